// Key Vault Premium: HSM-backed signing keys (RSA-HSM / EC-HSM). RBAC authorization only, soft delete and purge
// protection on, so a signing key can never be destroyed before every token it signed has expired. Besides the
// signing keys it holds the secrets the app reads through Key Vault references (Events__WebhookSecret, client
// secrets added per institution).
@description('Name of the vault (3-24 characters).')
param name string
@description('Location of the vault.')
param location string
@description('Tags to apply.')
param tags object
@description('Log Analytics workspace that receives the vault\'s audit log (AuditEvent: every sign, key and secret operation) and metrics.')
param workspaceId string
@description('Network isolation: public network access off; the app reaches the vault through a private endpoint.')
param networkIsolation bool = false
@secure()
@description('Value of Events__WebhookSecret, stored as a secret; the app reads it through a Key Vault reference.')
param eventsWebhookSecret string
@description('Name of the secret holding Events__WebhookSecret.')
param eventsWebhookSecretName string = 'events-webhook-secret'
@secure()
@description('Events__GraphClientState: the clientState of the Microsoft Graph subscription the app manages.')
param graphClientState string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'premium'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: networkIsolation ? 'Disabled' : 'Enabled'
  }
}

// Who signed, created, rotated or revoked which key, and every denied call (ForbiddenByRbac, KeyDisabled): the
// record an incident review and a security baseline ask for.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'AuditEvent', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}

// Written through the control plane at provision time (no data-plane role needed); the app reads the latest
// version, so a new value is picked up on the next reference refresh or restart.
resource eventsWebhook 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: eventsWebhookSecretName
  properties: {
    value: eventsWebhookSecret
    contentType: 'text/plain'
  }
}

resource graphClientStateSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-client-state'
  properties: {
    value: graphClientState
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
@description('Versionless URI of the Events__WebhookSecret secret, for a Key Vault reference.')
output eventsWebhookReferenceUri string = eventsWebhook.properties.secretUri
@description('Versionless URI of the Events__GraphClientState secret, for a Key Vault reference.')
output graphClientStateReferenceUri string = graphClientStateSecret.properties.secretUri
