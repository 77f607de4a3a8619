namespace TokenService.Azure.Tables;

/// <summary>A Table service error that is not a condition the caller handles (those are results).</summary>
public sealed class TableStorageException : Exception
{
    public TableStorageException(int status, string? errorCode, string message)
        : base(message)
    {
        Status = status;
        ErrorCode = errorCode;
    }

    public TableStorageException()
    {
    }

    public TableStorageException(string message)
        : base(message)
    {
    }

    public TableStorageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Status { get; }

    /// <summary>The service's <c>odata.error.code</c>, e.g. <c>InvalidInput</c>.</summary>
    public string? ErrorCode { get; }
}
