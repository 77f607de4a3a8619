// One private endpoint for one private-link group of a resource (a vault, a storage service, a topic), registered in
// its private DNS zone so that the resource's usual host name resolves to the endpoint inside the network.
@description('Name of the private endpoint.')
param name string
@description('Location of the endpoint.')
param location string
@description('Tags to apply.')
param tags object
@description('Subnet the endpoint takes its address from.')
param subnetId string
@description('Resource id of the resource behind the endpoint.')
param targetId string
@description('Private-link group of the resource: vault, blob, queue, table or topic.')
param groupId string
@description('Private DNS zone the endpoint registers its address in.')
param dnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [ groupId ]
        }
      }
    ]
  }

  resource dns 'privateDnsZoneGroups' = {
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: groupId
          properties: { privateDnsZoneId: dnsZoneId }
        }
      ]
    }
  }
}
