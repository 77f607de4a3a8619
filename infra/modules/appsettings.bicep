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
@description('The signing vault settings: Keys__KeyVaultUri, or Keys__Vaults__N__Uri for several vaults.')
param vaultSettings object
@description('The Microsoft Graph subscription settings (empty without a partner topic).')
param graphSettings object = {}

// Vault settings are the template's alone: those of an earlier vault count are dropped (a stale Keys__Vaults__2__Uri
// after going from three vaults to one would be a start-up error, or a vault nobody meant to sign with).
var keptSettings = toObject(
  filter(items(currentSettings), s => s.key != 'Keys__KeyVaultUri' && !startsWith(s.key, 'Keys__Vaults__')),
  s => s.key,
  s => s.value)

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(keptSettings, settings, vaultSettings, graphSettings)
}
