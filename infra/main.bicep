// Token service: one-command deployment with azd (`azd up`).
// Subscription scope: creates the resource group, then one module per concern.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. Used in resource names and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Primary location for all resources, e.g. westeurope. Only regions that offer the Flex Consumption plan are allowed (`az functionapp list-flexconsumption-locations` lists them today; a newer region can be added here once it does).')
// The Flex Consumption plan is offered in these regions (the list of the official Flex Consumption azd quickstart);
// in any other region `azd up` would fail at the plan after creating everything else.
@allowed([
  'australiaeast'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'northcentralus'
  'northeurope'
  'southcentralus'
  'southeastasia'
  'swedencentral'
  'uksouth'
  'westcentralus'
  'westeurope'
  'westus2'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user or service principal running azd. When set, it may manage signing keys (Key Vault Crypto Officer) for operations and incident response, and client secrets (Key Vault Secrets Officer).')
param principalId string = ''

@description('Exact issuer (iss) of the institutional IdP\'s ID tokens, e.g. https://login.microsoftonline.com/<tenant>/v2.0.')
param idpIssuer string

@description('Audience (aud) the IdP puts in ID tokens for this service (for Entra ID: the app registration\'s client id).')
param idpAudience string

@description('JWKS URL of the IdP, e.g. https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys.')
param idpJwksUri string

@description('ID-token claim that identifies users for sessions and IdP events (Entra ID: oid).')
param idpUserIdClaim string = 'oid'

@description('How many Key Vaults sign tokens (1-5). One vault allows 2,000 HSM signs per 10 s, about 200 tokens per second, and each more vault adds as much up to five: Key Vault also limits all vaults of a subscription together to five times one vault\'s limit, so a sixth vault would add nothing (docs/capacity.md). 1 writes Keys__KeyVaultUri; more write Keys__Vaults__N__Uri, the first being the vault that also holds the secrets.')
@minValue(1)
@maxValue(5)
param signingVaultCount int = 1

@allowed([ 'RS256', 'PS256', 'ES256' ])
@description('Signing algorithm of access tokens; the Key Vault key type follows (RSA-HSM or EC-HSM).')
param signingAlgorithm string = 'RS256'

@description('Issuer (iss) of our tokens and base of the discovery URLs, e.g. https://tokens.example.edu once a custom domain is bound; empty: https://<the function app\'s default host name>.')
param issuer string = ''

@description('Object ids of the principals (the IdP\'s relay, a provisioning job) that publish IdP events to the custom topic. The topic accepts Entra ID only, so each gets EventGrid Data Sender on it.')
param eventPublisherPrincipalIds array = []

@allowed([ 'Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS' ])
@description('Redundancy of the storage account (sessions, timers\' state, the app package). Standard_LRS exists in every allowed region; Standard_ZRS or Standard_GZRS only where the region has availability zones (recommended there: a zone outage then keeps sessions).')
param storageRedundancy string = 'Standard_LRS'

@description('Daily ingestion cap of the Log Analytics workspace in GB (bounds the telemetry bill; -1: no cap). Ingestion stops for the rest of the day once reached, so size it with docs/operations.md.')
param logDailyCapGb int = 2

@description('Share of requests whose traces are kept (0-1, as a string: Bicep has no decimals), written as OTEL_TRACES_SAMPLER_ARG with the Azure Monitor exporter\'s fixed-percentage sampler. Metrics and the audit logs are never sampled. 0.05 keeps about 10 traces a second at the design load of 200 tokens a second.')
param traceSamplingRatio string = '0.05'

@minValue(0)
@description('Always-ready instances of the HTTP functions (Flex Consumption alwaysReady for the "http" group): 0 scales from zero (a cold start on the first token request after idle); 1 or more keeps that many instances warm, billed at the always-ready rate.')
param httpAlwaysReadyInstances int = 0

@description('Network isolation: a virtual network for the app\'s outbound traffic and private endpoints for Key Vault, Storage (blob, queue, table) and the Event Grid topic, whose public network access is then off. The app itself stays reachable (it is the token endpoint of browsers and APIs).')
param networkIsolation bool = false

@secure()
@metadata({
  azd: {
    type: 'generate'
    config: { length: 48, noSpecial: true }
  }
})
@description('Events__WebhookSecret, stored in Key Vault and read by the app through a Key Vault reference. azd generates it once and keeps it in the environment\'s config; nobody types it.')
param eventsWebhookSecret string

@secure()
@metadata({
  azd: {
    type: 'generate'
    config: { length: 48, noSpecial: true }
  }
})
@description('Events__GraphClientState, stored in Key Vault: the clientState of the Microsoft Graph subscription the app creates and every Graph notification must carry. azd generates it once.')
param graphClientState string

@description('Name of the Event Grid partner topic for Microsoft Graph events (IDP_PARTNER_TOPIC_NAME). Set: the app creates, renews and recreates its Graph subscription on users with this topic as notificationUrl (docs/deployment.md, IdP events). Empty: no Graph subscription.')
param idpPartnerTopicName string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    dailyCapGb: logDailyCapGb
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${functionAppName}'
    skuName: storageRedundancy
    networkIsolation: networkIsolation
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    eventsWebhookSecret: eventsWebhookSecret
    graphClientState: graphClientState
    workspaceId: monitoring.outputs.workspaceId
    networkIsolation: networkIsolation
  }
}

// Vaults 1…N-1: one signing key each (vault 0 is the one above, which also holds the secrets).
module signingVaults 'modules/signingvault.bicep' = [for i in range(1, signingVaultCount - 1): {
  name: 'signingvault-${i}'
  scope: rg
  params: {
    name: 'kv${i}-${resourceToken}'
    location: location
    tags: tags
    functionPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    workspaceId: monitoring.outputs.workspaceId
    networkIsolation: networkIsolation
  }
}]

// A vault's URI follows from its name (module outputs cannot feed a loop variable); the app waits for the modules.
var extraSigningVaultUris = [for i in range(1, signingVaultCount - 1): 'https://kv${i}-${resourceToken}${environment().suffixes.keyvaultDns}/']
var signingVaultUris = concat([keyVault.outputs.uri], extraSigningVaultUris)

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}app-package-${functionAppName}'
    tableEndpoint: storage.outputs.tableEndpoint
    signingVaultUris: signingVaultUris
    eventsWebhookReferenceUri: keyVault.outputs.eventsWebhookReferenceUri
    graphClientStateReferenceUri: keyVault.outputs.graphClientStateReferenceUri
    graphPartnerTopicName: idpPartnerTopicName
    issuer: issuer
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    idpIssuer: idpIssuer
    idpAudience: idpAudience
    idpJwksUri: idpJwksUri
    idpUserIdClaim: idpUserIdClaim
    signingAlgorithm: signingAlgorithm
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    traceSamplingRatio: traceSamplingRatio
    virtualNetworkSubnetId: networkIsolation ? network!.outputs.appSubnetId : ''
  }
  // The app starts (and resolves its Key Vault reference) as soon as its settings are written: its roles first.
  dependsOn: [ roles, signingVaults ]
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    functionPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    operatorPrincipalId: principalId
  }
}

// The topic and the dead-letter identity; the subscriptions follow the code (infra/eventsubscriptions.bicep, deployed
// by the postdeploy hook scripts/create-event-subscription.sh).
module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    topicName: 'evgt-${resourceToken}'
    deadLetterIdentityName: 'id-evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    publisherPrincipalIds: eventPublisherPrincipalIds
    workspaceId: monitoring.outputs.workspaceId
    networkIsolation: networkIsolation
  }
}

// Network isolation: the network, then one private endpoint per vault, storage service and the topic.
module network 'modules/network.bicep' = if (networkIsolation) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
  }
}

// Targets by resource id built from their names (known at the start of the deployment, which a resource loop needs).
var vaultNames = concat([ 'kv-${resourceToken}' ], map(range(1, signingVaultCount - 1), i => 'kv${i}-${resourceToken}'))
var privateEndpoints = concat(
  map(vaultNames, v => { name: 'pe-${v}', type: 'Microsoft.KeyVault/vaults', target: v, groupId: 'vault' }),
  map([ 'blob', 'queue', 'table' ], g => { name: 'pe-st-${g}-${resourceToken}', type: 'Microsoft.Storage/storageAccounts', target: 'st${resourceToken}', groupId: g }),
  [ { name: 'pe-evgt-${resourceToken}', type: 'Microsoft.EventGrid/topics', target: 'evgt-${resourceToken}', groupId: 'topic' } ])

module endpoints 'modules/privateendpoint.bicep' = [for endpoint in privateEndpoints: if (networkIsolation) {
  name: endpoint.name
  scope: rg
  params: {
    name: endpoint.name
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    targetId: resourceId(subscription().subscriptionId, rg.name, endpoint.type, endpoint.target)
    groupId: endpoint.groupId
    dnsZoneId: network!.outputs.zoneIds[endpoint.groupId]
  }
  dependsOn: [ keyVault, signingVaults, storage, eventGrid ]
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output TOKEN_SERVICE_URL string = functionApp.outputs.uri
output TOKEN_SERVICE_ISSUER string = functionApp.outputs.issuer
output AZURE_FUNCTION_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output AZURE_STORAGE_TABLE_URI string = storage.outputs.tableEndpoint
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_EVENTGRID_TOPIC_NAME string = eventGrid.outputs.topicName
output AZURE_EVENTGRID_TOPIC_ENDPOINT string = eventGrid.outputs.topicEndpoint
output AZURE_EVENTGRID_IDENTITY_ID string = eventGrid.outputs.deadLetterIdentityId
output AZURE_EVENTGRID_DEADLETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output AZURE_CLIENT_ID string = identity.outputs.clientId
