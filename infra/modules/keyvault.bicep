// Key Vault Premium: HSM-backed signing keys (RSA-HSM / EC-HSM). RBAC authorization only, soft delete and purge
// protection on, so a signing key can never be destroyed before every token it signed has expired.
@description('Name of the vault (3-24 characters).')
param name string
@description('Location of the vault.')
param location string
@description('Tags to apply.')
param tags object

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
    publicNetworkAccess: 'Enabled'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
