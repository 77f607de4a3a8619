# azd postprovision hook on Windows (PowerShell 7): the same steps as grant-graph-permission.sh, which azd runs on
# Linux and macOS. Grants the function app's managed identity the Microsoft Graph application permission
# User.Read.All, which Events__GraphEndpoint lookups need. Bicep cannot grant Graph app roles, so this runs after
# every provision and is idempotent: an existing assignment is left alone.
#
# Needs the Azure CLI signed in (az login) as a user who may grant Microsoft Graph application permissions
# (Privileged Role Administrator or Global Administrator). Without that right it prints the command an administrator
# can run and exits 1; azd continues (continueOnError in azure.yaml).
# Inputs: AZURE_FUNCTION_PRINCIPAL_ID (output of infra/main.bicep). GRANT_GRAPH_PERMISSION=false skips.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$graphAppId = '00000003-0000-0000-c000-000000000000'   # Microsoft Graph (the same appId in every tenant)
$userReadAllId = 'df021288-bdef-4463-88db-98f22de89214' # User.Read.All (Application)
$retrySeconds = if ($env:GRAPH_RETRY_SECONDS) { [int]$env:GRAPH_RETRY_SECONDS } else { 15 }

if ($env:GRANT_GRAPH_PERMISSION -eq 'false') {
    Write-Output 'GRANT_GRAPH_PERMISSION=false: not granting Microsoft Graph User.Read.All.'
    exit 0
}

$principalId = $env:AZURE_FUNCTION_PRINCIPAL_ID
if (-not $principalId -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    $principalId = (azd env get-value AZURE_FUNCTION_PRINCIPAL_ID 2>$null)
}
if (-not $principalId) {
    [Console]::Error.WriteLine('AZURE_FUNCTION_PRINCIPAL_ID is not set: run azd provision first.')
    exit 1
}

az account show --only-show-errors -o none 2>$null
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine('The Azure CLI is not signed in: run az login (same tenant as azd), then azd hooks run postprovision.')
    exit 1
}

# Microsoft Graph's base URL in the cloud the CLI is signed in to (https://graph.microsoft.com in the public cloud).
$graph = (az cloud show --query endpoints.microsoftGraphResourceId -o tsv 2>$null)
if (-not $graph) { $graph = 'https://graph.microsoft.com/' }
$graph = $graph.TrimEnd('/')

$graphSpId = (az ad sp show --id $graphAppId --query id -o tsv --only-show-errors)
$roleId = (az ad sp show --id $graphAppId --query "appRoles[?value=='User.Read.All' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv --only-show-errors)
if (-not $roleId) {
    $roleId = $userReadAllId
} elseif ($roleId -ne $userReadAllId) {
    Write-Output "Note: User.Read.All has app role id $roleId in this cloud (public cloud: $userReadAllId)."
}

$body = "{`"principalId`":`"$principalId`",`"resourceId`":`"$graphSpId`",`"appRoleId`":`"$roleId`"}"
$grantCommand = "az rest --method post --url '$graph/v1.0/servicePrincipals/$graphSpId/appRoleAssignedTo' --headers Content-Type=application/json --body '$body'"

# A managed identity created a moment ago may not have replicated to Microsoft Graph yet: retry for a few minutes.
$assigned = $null
foreach ($attempt in 1..12) {
    $answer = (az rest --method get --only-show-errors --url "$graph/v1.0/servicePrincipals/$principalId/appRoleAssignments" `
        --query "length(value[?resourceId=='$graphSpId' && appRoleId=='$roleId'])" -o tsv 2>$null)
    if ($LASTEXITCODE -eq 0) { $assigned = "$answer".Trim(); break }
    Write-Output "The identity $principalId is not visible in Microsoft Graph yet (attempt $attempt); retrying in $retrySeconds s."
    Start-Sleep -Seconds $retrySeconds
}
if ($null -eq $assigned) {
    [Console]::Error.WriteLine("Could not read the app role assignments of $principalId. An administrator can grant the permission with:")
    [Console]::Error.WriteLine("  $grantCommand")
    exit 1
}
if ($assigned -ne '0') {
    Write-Output "Microsoft Graph User.Read.All is already granted to $principalId."
    exit 0
}

# PowerShell passes an argument holding double quotes to a native program unescaped (PSNativeCommandArgumentPassing
# Standard, PowerShell 7.3 and later), so the body goes as it is.
az rest --method post --only-show-errors -o none --url "$graph/v1.0/servicePrincipals/$graphSpId/appRoleAssignedTo" `
    --headers 'Content-Type=application/json' --body $body
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine('Granting Microsoft Graph User.Read.All failed: the signed-in user needs Privileged Role Administrator')
    [Console]::Error.WriteLine('(or Global Administrator). An administrator can grant it with:')
    [Console]::Error.WriteLine("  $grantCommand")
    exit 1
}
Write-Output "Granted Microsoft Graph User.Read.All to the function app's identity $principalId."
