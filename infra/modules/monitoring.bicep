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

output appInsightsName string = appInsights.name
output workspaceId string = workspace.id
output appInsightsConnectionString string = appInsights.properties.ConnectionString
