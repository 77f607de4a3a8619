// The function app's user-assigned managed identity: the only identity that reads sessions and signs tokens.
@description('Name of the managed identity.')
param name string
@description('Location of the identity.')
param location string
@description('Tags to apply.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
