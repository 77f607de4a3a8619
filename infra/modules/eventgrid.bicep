// IdP events: a CloudEvents topic the IdP (or a relay) publishes to with Entra ID (local auth is off, so every
// publisher is granted EventGrid Data Sender here), and the identity Event Grid dead-letters with.
//
// The subscriptions themselves are not in this template: an AzureFunction destination is validated when the
// subscription is created, so the IdpEvents function must already be deployed. scripts/create-event-subscription.sh
// (azd postdeploy hook) deploys infra/eventsubscriptions.bicep after the code, so one `azd up` does both.
//
// Dead-lettering: the storage account has no shared keys, so Event Grid must write dead letters with a managed
// identity of the topic that delivers the event. A Microsoft Graph or Auth0 partner topic is created by the
// partner with no identity at all, so a SystemAssigned dead-letter identity on its subscription names an identity
// that does not exist. Instead one user-assigned identity, created here and granted Storage Blob Data
// Contributor on the dead-letter container only (not the account, which holds the sessions' tables and the app
// package), is attached to the custom topic below and to the partner topic by the hook; both subscriptions
// dead-letter with it. Dead-lettering without an identity is not an option: it needs shared-key access on the
// account, which stays off.
@description('Name of the custom topic for IdP events.')
param topicName string
@description('Name of the user-assigned identity Event Grid dead-letters with.')
param deadLetterIdentityName string
@description('Location of the topic.')
param location string
@description('Tags to apply.')
param tags object
@description('Storage account for dead-lettered events.')
param storageAccountName string
@description('Blob container for dead-lettered events.')
param deadLetterContainerName string
@description('Log Analytics workspace that receives the topic\'s delivery and publish failures.')
param workspaceId string
@description('Network isolation: public network access to the topic off (publishers reach it through its private endpoint).')
param networkIsolation bool = false
@description('Object ids of the principals (IdP relay, provisioning job) that publish IdP events to the topic.')
param publisherPrincipalIds array = []

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource deadLetterContainer 'containers' existing = {
      name: deadLetterContainerName
    }
  }
}

resource deadLetterIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: deadLetterIdentityName
  location: location
  tags: tags
}

// Write dead letters: Storage Blob Data Contributor on the dead-letter container only.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::deadLetterContainer.id, deadLetterIdentity.id, storageBlobDataContributor)
  scope: storage::blobService::deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deadLetterIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${deadLetterIdentity.id}': {}
    }
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: networkIsolation ? 'Disabled' : 'Enabled'
  }
}

// Events that could not be delivered (the function down, refused, dead-lettered) or published: the alert on IdP
// events that stop flowing reads these (docs/idp-events.md).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'failures-to-log-analytics'
  scope: topic
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'DeliveryFailures', enabled: true }
      { category: 'PublishFailures', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}

// IdP events that stopped flowing to the app: any event dead-lettered or dropped on the custom topic fires this alert
// (severity 1: every such event is a user who may keep sessions the IdP meant to end; docs/idp-events.md says what
// to do). Routed to the action groups of the subscription's alert processing rules, or seen in the portal.
resource deliveryAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${topicName}-events-not-delivered'
  location: 'global'
  tags: tags
  properties: {
    description: 'IdP events were dead-lettered or dropped: sessions the IdP ended may still be active. See docs/idp-events.md, "When events cannot flow".'
    severity: 1
    enabled: true
    scopes: [ topic.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dead-lettered'
          metricName: 'DeadLetteredCount'
          metricNamespace: 'Microsoft.EventGrid/topics'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'dropped'
          metricName: 'DroppedEventCount'
          metricNamespace: 'Microsoft.EventGrid/topics'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
  }
}

// Publishing with Entra ID (disableLocalAuth: no access keys or SAS): EventGrid Data Sender on this topic only.
resource publishers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for publisherPrincipalId in publisherPrincipalIds: {
    name: guid(topic.id, publisherPrincipalId, eventGridDataSender)
    scope: topic
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
      principalId: publisherPrincipalId
    }
  }
]

output topicName string = topic.name
output topicEndpoint string = topic.properties.endpoint
output deadLetterIdentityId string = deadLetterIdentity.id
