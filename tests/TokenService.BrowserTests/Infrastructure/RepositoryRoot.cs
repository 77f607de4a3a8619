namespace TokenService.BrowserTests.Infrastructure;

public static class RepositoryRoot
{
    /// <summary>The folder holding TokenFunctions.sln above the test's output folder.</summary>
    public static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TokenFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (TokenFunctions.sln) above " + AppContext.BaseDirectory);
    }
}
