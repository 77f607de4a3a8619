// Event Grid subscriptions delivering IdP events to the IdpEvents function, with retries and dead-lettering.
//
// Deployed by scripts/create-event-subscription.sh (azd postdeploy hook) into the resource group of main.bicep,
// not by main.bicep itself: Event Grid validates an AzureFunction destination when the subscription is created,
// so the function must already be deployed. `azd up` provisions, deploys the code, then runs the hook.
//
// Dead letters are written with the user-assigned identity from modules/eventgrid.bicep, which holds Storage Blob
// Data Contributor on the dead-letter container. It is attached to the custom topic by main.bicep and to the
// partner topic by the hook before this template runs: a subscription can only use an identity its topic has,
// and a partner topic has none of its own (see modules/eventgrid.bicep).
targetScope = 'resourceGroup'

@description('Name of the custom topic for IdP events (output AZURE_EVENTGRID_TOPIC_NAME).')
param topicName string
@description('Name of the function app hosting the IdpEvents function (output AZURE_FUNCTION_APP_NAME).')
param functionAppName string
@description('Storage account for dead-lettered events (output AZURE_STORAGE_ACCOUNT_NAME).')
param storageAccountName string
@description('Blob container for dead-lettered events (output AZURE_EVENTGRID_DEADLETTER_CONTAINER).')
param deadLetterContainerName string
@description('Resource id of the user-assigned identity Event Grid dead-letters with (output AZURE_EVENTGRID_IDENTITY_ID).')
param deadLetterIdentityId string
@description('Existing partner topic (Microsoft Graph, Auth0) in this resource group to subscribe to as well; empty for none. It must carry the dead-letter identity.')
param partnerTopicName string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: topicName
}

var delivery = {
  destination: {
    endpointType: 'AzureFunction'
    properties: {
      resourceId: '${functionApp.id}/functions/IdpEvents'
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
    identity: {
      type: 'UserAssigned'
      userAssignedIdentity: deadLetterIdentityId
    }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: storage.id
        blobContainerName: deadLetterContainerName
      }
    }
  }
}

resource subscription 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'idp-events-to-function'
  properties: delivery
}

resource partnerTopic 'Microsoft.EventGrid/partnerTopics@2022-06-15' existing = if (!empty(partnerTopicName)) {
  name: empty(partnerTopicName) ? 'none' : partnerTopicName
}

resource partnerSubscription 'Microsoft.EventGrid/partnerTopics/eventSubscriptions@2022-06-15' = if (!empty(partnerTopicName)) {
  parent: partnerTopic
  name: 'idp-partner-events-to-function'
  properties: delivery
}

output subscriptionId string = subscription.id
