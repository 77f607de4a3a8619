// IdP events: a CloudEvents topic the IdP (or a relay) publishes to, and subscriptions delivering to the
// IdpEvents function with retries and dead-lettering to blob storage (with the topic's own identity, since the
// account has no shared keys).
@description('Name of the custom topic for IdP events.')
param topicName string
@description('Location of the topic.')
param location string
@description('Tags to apply.')
param tags object
@description('Resource id of the function app hosting the IdpEvents function.')
param functionAppId string
@description('Storage account for dead-lettered events.')
param storageAccountName string
@description('Blob container for dead-lettered events.')
param deadLetterContainerName string
@description('Create the subscriptions (the IdpEvents function must already be deployed).')
param createSubscription bool
@description('Existing partner topic (Microsoft Graph, Auth0) in this resource group to subscribe to; empty for none.')
param partnerTopicName string = ''

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: topicName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, topic.id, storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

var delivery = {
  destination: {
    endpointType: 'AzureFunction'
    properties: {
      resourceId: '${functionAppId}/functions/IdpEvents'
      maxEventsPerBatch: 1
      preferredBatchSizeInKilobytes: 64
    }
  }
  eventDeliverySchema: 'CloudEventSchemaV1_0'
  retryPolicy: {
    maxDeliveryAttempts: 30
    eventTimeToLiveInMinutes: 1440
  }
  deadLetterWithResourceIdentity: {
    identity: { type: 'SystemAssigned' }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: storage.id
        blobContainerName: deadLetterContainerName
      }
    }
  }
}

resource subscription 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = if (createSubscription) {
  parent: topic
  name: 'idp-events-to-function'
  properties: delivery
  dependsOn: [ deadLetterWriter ]
}

resource partnerTopic 'Microsoft.EventGrid/partnerTopics@2022-06-15' existing = if (!empty(partnerTopicName)) {
  name: empty(partnerTopicName) ? 'none' : partnerTopicName
}

resource partnerSubscription 'Microsoft.EventGrid/partnerTopics/eventSubscriptions@2022-06-15' = if (createSubscription && !empty(partnerTopicName)) {
  parent: partnerTopic
  name: 'idp-partner-events-to-function'
  properties: delivery
}

output topicEndpoint string = topic.properties.endpoint
