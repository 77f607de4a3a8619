namespace TokenService.Events;

/// <summary>
/// Reads the events of one IdP source (our own schema, Microsoft Graph change notifications, Auth0 log events, Security
/// Event Tokens) into what each asks for. <see cref="IdpEventProcessor"/> asks its translators in turn; the first that
/// knows an event decides it. Translating changes nothing: the processor acts only once the whole delivery is read.
/// </summary>
public interface IIdpEventTranslator
{
    /// <summary>
    /// The decision for <paramref name="e"/>, or null when the event is not of this translator's source. Throws
    /// <see cref="MalformedEventException"/> for an event of its source with unusable data (the delivery is refused whole).
    /// </summary>
    ValueTask<IdpEventDecision?> TranslateAsync(IdpEventEnvelope e, CancellationToken cancellationToken);
}
