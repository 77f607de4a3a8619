// Log Analytics and workspace-based Application Insights (local auth off: ingestion with Entra ID).
@description('Name of the Log Analytics workspace.')
param logAnalyticsName string
@description('Name of the Application Insights component.')
param appInsightsName string
@description('Location of the resources.')
param location string
@description('Tags to apply.')
param tags object
@description('Daily ingestion cap in GB; -1 for none.')
param dailyCapGb int = 2

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
    // Bounds the telemetry bill: past the cap, ingestion stops until the next day (Log Analytics' own rule).
    workspaceCapping: { dailyQuotaGb: dailyCapGb }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// The operator's picture without writing a query: tokens per minute, reuse detections, sessions ended, key age and
// next rotation, vault throttling, IdP events by type and dependency failures (infra/workbooks; a test checks that
// every query names a metric or log the service emits).
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsName, 'token-service-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Token service'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: loadTextContent('../workbooks/token-service.workbook.json')
  }
}

output appInsightsName string = appInsights.name
output workspaceId string = workspace.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
