// Flex Consumption function app (dotnet-isolated 10.0) running as the user-assigned identity. App settings carry
// the contract's configuration keys; none of them holds a secret value: storage, Key Vault and App Insights use
// Entra ID, and Events__WebhookSecret is a Key Vault reference resolved with the same identity.
@description('Name of the function app.')
param name string
@description('Name of the Flex Consumption plan.')
param planName string
@description('Location of the app.')
param location string
@description('Tags to apply; the app also gets azd-service-name: api.')
param tags object
@description('Resource id of the user-assigned identity.')
param identityId string
@description('Client id of the user-assigned identity (AZURE_CLIENT_ID for DefaultAzureCredential).')
param identityClientId string
@description('Storage account for AzureWebJobsStorage (identity-based).')
param storageAccountName string
@description('Blob container URL the deployment package goes to.')
param deploymentContainerUrl string
@description('Table service endpoint for sessions (Storage__TableServiceUri).')
param tableEndpoint string
@description('URIs of the signing vaults: one is written as Keys__KeyVaultUri, several as Keys__Vaults__N__Uri.')
param signingVaultUris array
@description('Versionless secret URI of Events__WebhookSecret in Key Vault (resolved as a Key Vault reference).')
param eventsWebhookReferenceUri string
@description('Versionless URI of the Events__GraphClientState secret.')
param graphClientStateReferenceUri string
@description('The Event Grid partner topic Microsoft Graph delivers to; empty: the app manages no Graph subscription.')
param graphPartnerTopicName string = ''
@description('Issuer (iss) of our tokens; empty: https://<the app\'s default host name>.')
param issuer string = ''
// Microsoft Graph's base URL in the cloud being deployed to (public, US Government, China): ARM's environment() names
// the cloud but not Microsoft Graph, so the map is written out here.
var graphEndpoints = {
  AzureCloud: 'https://graph.microsoft.com'
  AzureUSGovernment: 'https://graph.microsoft.us'
  AzureChinaCloud: 'https://microsoftgraph.chinacloudapi.cn'
}
// Microsoft Graph base URL for UserUpdated lookups; the app appends /v1.0/users/{id} and asks for <base>/.default.
var graphEndpoint = graphEndpoints[?environment().name] ?? graphEndpoints.AzureCloud
@description('Application Insights connection string (not a secret: ingestion requires Entra ID).')
param appInsightsConnectionString string
@description('Issuer of the IdP\'s ID tokens.')
param idpIssuer string
@description('Audience of the IdP\'s ID tokens.')
param idpAudience string
@description('JWKS URL of the IdP.')
param idpJwksUri string
@description('ID-token claim naming users.')
param idpUserIdClaim string
@description('Access-token signing algorithm.')
param signingAlgorithm string
@description('Maximum number of instances the app scales out to.')
param maximumInstanceCount int = 40
@description('Memory per instance in MB.')
param instanceMemoryMB int = 2048
@description('Always-ready instances of the HTTP functions ("http" group); 0: none.')
param httpAlwaysReadyInstances int = 0
@description('Subnet (delegated to Microsoft.App/environments) the app sends its outbound traffic through; empty: no VNet integration.')
param virtualNetworkSubnetId string = ''
@description('OTEL_TRACES_SAMPLER_ARG: share of traces kept by the Azure Monitor exporter\'s fixed-percentage sampler.')
param traceSamplingRatio string = '0.05'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (there is no system-assigned one).
    keyVaultReferenceIdentity: identityId
    // Flex Consumption lists ftpsState among its unsupported site properties: FTP and SCM basic-auth publishing are
    // turned off below (basicPublishingCredentialsPolicies) instead. azd deploys with Entra ID.
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // Warm instances for the token endpoint: a cold start there is paid by a user waiting to sign in.
        alwaysReady: httpAlwaysReadyInstances > 0 ? [ { name: 'http', instanceCount: httpAlwaysReadyInstances } ] : []
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

// No publishing with a user name and password, over FTP or to the SCM site.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

// The default host name is only known once the site exists (Flex Consumption may add a unique suffix), so the
// issuer is derived from it here and the settings are written by a module that runs after the site.
var effectiveIssuer = empty(issuer) ? 'https://${app.properties.defaultHostName}' : issuer

module settings 'appsettings.bicep' = {
  name: '${name}-appsettings'
  params: {
    appName: app.name
    // Settings added outside the template (Clients__N__… with az functionapp config appsettings set) survive
    // `azd provision`; the keys below always take the template's values.
    currentSettings: list('${app.id}/config/appsettings', '2024-04-01').properties
    settings: {
      AzureWebJobsStorage__accountName: storageAccountName
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AZURE_CLIENT_ID: identityClientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
      // Trace sampling, read by the Azure Monitor exporter: a fixed share of traces (metrics and logs are not sampled).
      OTEL_TRACES_SAMPLER: 'microsoft.fixed_percentage'
      OTEL_TRACES_SAMPLER_ARG: traceSamplingRatio
      TokenService__Issuer: effectiveIssuer
      Idp__Issuer: idpIssuer
      Idp__Audience: idpAudience
      Idp__JwksUri: idpJwksUri
      Idp__UserIdClaim: idpUserIdClaim
      Storage__TableServiceUri: tableEndpoint
      Keys__KeyName: 'token-signing'
      Keys__Algorithm: signingAlgorithm
      // Required outside Development: without it the app does not start (start-up validation). A Key Vault
      // reference, so the value is in no template, parameter file or deployment history.
      Events__WebhookSecret: '@Microsoft.KeyVault(SecretUri=${eventsWebhookReferenceUri})'
      // UserUpdated notifications carry ids only: the user is looked up with an app token (User.Read.All,
      // granted by scripts/grant-graph-permission.sh, since Bicep cannot grant Graph app roles).
      Events__GraphEndpoint: graphEndpoint
      // One client may use every vault's whole sign budget (docs/capacity.md, sizing the per-client request limit):
      // 12,000 a minute (2,000 signs per 10 s) per signing vault.
      RateLimits__PerClientPerMinute: string(12000 * length(signingVaultUris))
      // Clients__N__… are added per institution; their secrets as Key Vault references, never in parameters.
    }
    // One vault: the one-vault form. Several: the list (configuring both stops the app at start-up).
    // The Graph subscription the app creates and renews (GraphSubscriptionRenewal): the partner topic as Graph's
    // notificationUrl, in the form Graph documents for Event Grid, and its clientState as a Key Vault reference. Absent
    // without a partner topic, so that a NotificationUrl an operator set by hand (kept settings) is not overwritten.
    graphSettings: empty(graphPartnerTopicName) ? {} : {
      Events__GraphSubscription__NotificationUrl: 'EventGrid:?azuresubscriptionid=${subscription().subscriptionId}&resourcegroup=${resourceGroup().name}&partnertopic=${graphPartnerTopicName}&location=${location}'
      Events__GraphClientState: '@Microsoft.KeyVault(SecretUri=${graphClientStateReferenceUri})'
    }
    vaultSettings: length(signingVaultUris) == 1
      ? { Keys__KeyVaultUri: signingVaultUris[0] }
      : toObject(range(0, length(signingVaultUris)), i => 'Keys__Vaults__${i}__Uri', i => signingVaultUris[i])
  }
}

output id string = app.id
output name string = app.name
output uri string = 'https://${app.properties.defaultHostName}'
output issuer string = effectiveIssuer
