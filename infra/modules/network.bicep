// Network isolation (main.bicep's networkIsolation): a virtual network with one subnet the function app sends its
// outbound traffic through (Flex Consumption VNet integration, delegated to Microsoft.App/environments) and one for
// private endpoints, with the private DNS zones that make the vaults', the storage account's and the topic's usual
// host names resolve to those endpoints inside the network. The app's inbound side stays public: browsers and APIs
// call its token endpoint from anywhere.
@description('Name of the virtual network.')
param name string
@description('Location of the network.')
param location string
@description('Tags to apply.')
param tags object

// Private DNS zone names follow the cloud (public, US Government, China): the Key Vault zone is "vaultcore" where
// the vault's own suffix is "vault", storage zones follow the storage suffix, and Event Grid has one per cloud.
var keyVaultZone = 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
var storageSuffix = environment().suffixes.storage
var eventGridZones = {
  AzureCloud: 'privatelink.eventgrid.azure.net'
  AzureUSGovernment: 'privatelink.eventgrid.azure.us'
  AzureChinaCloud: 'privatelink.eventgrid.azure.cn'
}
var zoneNames = [
  keyVaultZone
  'privatelink.blob.${storageSuffix}'
  'privatelink.queue.${storageSuffix}'
  'privatelink.table.${storageSuffix}'
  eventGridZones[?environment().name] ?? eventGridZones.AzureCloud
]

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [ '10.40.0.0/16' ] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: '10.40.0.0/24'
          delegations: [
            {
              name: 'flex-consumption'
              properties: { serviceName: 'Microsoft.App/environments' }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: '10.40.1.0/24'
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zone in zoneNames: {
  name: zone
  location: 'global'
  tags: tags
}]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zone, i) in zoneNames: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnet.id }
  }
}]

output appSubnetId string = vnet.properties.subnets[0].id
output privateEndpointSubnetId string = vnet.properties.subnets[1].id
@description('Private DNS zone ids by private-link group: vault, blob, queue, table, topic.')
output zoneIds object = {
  vault: zones[0].id
  blob: zones[1].id
  queue: zones[2].id
  table: zones[3].id
  topic: zones[4].id
}
