// One more signing vault (Keys__Vaults__N__Uri) for when one vault's sign limit (Key Vault Premium: 2,000 HSM signs per
// 10 s for RSA-2048 and P-256) caps the service: Key Vault's limits are per vault, so N vaults sign N times as fast.
// Premium (HSM-backed keys), RBAC only, soft delete and purge protection as for the first vault; it holds nothing but
// this service's signing key, so the app's roles are granted on it whole. A Managed HSM pool works as a vault too
// (https://<name>.managedhsm.azure.net, local RBAC role "Managed HSM Crypto User", which covers signing and the rotation
// check's key creation, granted with az keyvault role assignment create --hsm-name …); not deployed here (docs/key-vault.md).
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
@description('Principal id of the function app\'s managed identity.')
param functionPrincipalId string
@description('Optional operator (the azd user) who may manage keys; empty for none.')
param operatorPrincipalId string = ''

var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'
var keyVaultCryptoOfficer = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603'

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

// Sign and read public keys: every token issue and the JWKS cache.
resource signer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionPrincipalId, keyVaultCryptoUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key creation and lifecycle tags for the rotation check (as on the first vault; see roles.bicep).
resource rotator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionPrincipalId, keyVaultCryptoOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoOfficer)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultCryptoOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoOfficer)
    principalId: operatorPrincipalId
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
