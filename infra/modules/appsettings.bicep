// App settings of the function app, written after the site exists (TokenService__Issuer needs the site's default
// host name). Merged over the settings the app already has, so that settings added outside the template (clients)
// survive `azd provision`; every key in `settings` takes the template's value.
@description('Name of the function app.')
param appName string
@secure()
@description('The app\'s current settings (may include client settings added by operators).')
param currentSettings object
@description('Settings the template owns.')
param settings object

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(currentSettings, settings)
}
