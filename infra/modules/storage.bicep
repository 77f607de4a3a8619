// Storage: session tables, the function app's deployment container and the Event Grid dead-letter container.
// Shared-key access is off: every client (the function app, Event Grid) authenticates with Entra ID.
@description('Name of the storage account (3-24 lowercase letters and digits).')
param name string
@description('Location of the account.')
param location string
@description('Tags to apply.')
param tags object
@description('Blob container that Flex Consumption deploys the app package to.')
param deploymentContainerName string
@allowed([ 'Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS' ])
@description('Redundancy: Standard_LRS exists in every region; ZRS and GZRS only in regions with availability zones.')
param skuName string = 'Standard_LRS'
@description('Network isolation: no access from public networks except trusted Azure services (Event Grid writing dead letters with its identity); the app reaches the account through private endpoints.')
param networkIsolation bool = false
@description('Names of the tables the token service uses (see docs/table-storage.md).')
param tableNames array = [ 'sessions', 'tokenmarkers', 'ssfstreams' ]

var deadLetterContainerName = 'eventgrid-deadletter'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    // Isolated: public networks are denied, but Event Grid (a trusted service, authenticating with its managed
    // identity) may still write dead letters; with publicNetworkAccess Disabled it could not.
    networkAcls: networkIsolation ? {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    } : {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobs 'blobServices' = {
    name: 'default'

    resource deployment 'containers' = {
      name: deploymentContainerName
    }

    resource deadLetter 'containers' = {
      name: deadLetterContainerName
    }
  }

  resource tableService 'tableServices' = {
    name: 'default'

    resource tables 'tables' = [for table in tableNames: {
      name: table
    }]
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output deadLetterContainerName string = deadLetterContainerName
