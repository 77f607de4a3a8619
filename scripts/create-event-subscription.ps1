# azd postdeploy hook on Windows (PowerShell 7): the same steps as create-event-subscription.sh, which azd runs on
# Linux and macOS. Creates (or updates) the Event Grid subscriptions that deliver IdP events to the IdpEvents
# function by deploying infra/eventsubscriptions.bicep into the resource group; with IDP_PARTNER_TOPIC_NAME set it
# also activates that partner topic and attaches the dead-letter identity to it. Idempotent.
# Inputs: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME, AZURE_EVENTGRID_TOPIC_NAME,
# AZURE_STORAGE_ACCOUNT_NAME, AZURE_EVENTGRID_DEADLETTER_CONTAINER, AZURE_EVENTGRID_IDENTITY_ID (outputs of
# infra/main.bicep); optional IDP_PARTNER_TOPIC_NAME. CREATE_EVENT_SUBSCRIPTION=false skips.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Split-Path -Parent $PSScriptRoot
$eventGridApi = '2022-06-15'
$webApi = '2024-04-01'
$waitSeconds = if ($env:WAIT_SECONDS) { [int]$env:WAIT_SECONDS } else { 10 }
$retrySeconds = if ($env:RETRY_SECONDS) { [int]$env:RETRY_SECONDS } else { 30 }
$waitAttempts = if ($env:FUNCTION_WAIT_ATTEMPTS) { [int]$env:FUNCTION_WAIT_ATTEMPTS } else { 30 }

if ($env:CREATE_EVENT_SUBSCRIPTION -eq 'false') {
    Write-Output 'CREATE_EVENT_SUBSCRIPTION=false: not creating the Event Grid subscriptions.'
    exit 0
}

$names = 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_EVENTGRID_TOPIC_NAME',
    'AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_EVENTGRID_DEADLETTER_CONTAINER', 'AZURE_EVENTGRID_IDENTITY_ID'
$values = @{}
$missing = @()
foreach ($name in $names) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if (-not $value -and (Get-Command azd -ErrorAction SilentlyContinue)) {
        $value = (azd env get-value $name 2>$null)
    }
    if ($value) { $values[$name] = "$value".Trim() } else { $missing += $name }
}
if ($missing.Count -gt 0) {
    [Console]::Error.WriteLine("Missing azd environment values: $($missing -join ' '). Run azd provision (infra/main.bicep outputs them) first.")
    exit 1
}

az account show --only-show-errors -o none 2>$null
if ($LASTEXITCODE -ne 0) {
    [Console]::Error.WriteLine('The Azure CLI is not signed in: run az login, then azd hooks run postdeploy.')
    exit 1
}
az account set --subscription $values.AZURE_SUBSCRIPTION_ID --only-show-errors

$groupId = "/subscriptions/$($values.AZURE_SUBSCRIPTION_ID)/resourceGroups/$($values.AZURE_RESOURCE_GROUP)"
$functionId = "$groupId/providers/Microsoft.Web/sites/$($values.AZURE_FUNCTION_APP_NAME)/functions/IdpEvents"

# The function list of a Flex Consumption app is refreshed shortly after the package is deployed.
$found = $false
foreach ($attempt in 1..$waitAttempts) {
    az rest --method get --only-show-errors -o none --url "$functionId`?api-version=$webApi" 2>$null
    if ($LASTEXITCODE -eq 0) { $found = $true; break }
    Write-Output "IdpEvents is not listed on $($values.AZURE_FUNCTION_APP_NAME) yet (attempt $attempt); retrying in $waitSeconds s."
    Start-Sleep -Seconds $waitSeconds
}
if (-not $found) {
    [Console]::Error.WriteLine("The IdpEvents function does not exist on $($values.AZURE_FUNCTION_APP_NAME): check the deployment (azd deploy) and the")
    [Console]::Error.WriteLine("app's start-up log, then run azd hooks run postdeploy.")
    exit 1
}

$partnerTopic = "$env:IDP_PARTNER_TOPIC_NAME"
if ($partnerTopic) {
    $partnerId = "$groupId/providers/Microsoft.EventGrid/partnerTopics/$partnerTopic"
    $state = (az rest --method get --only-show-errors --url "$partnerId`?api-version=$eventGridApi" --query properties.activationState -o tsv)
    if ($LASTEXITCODE -ne 0) {
        [Console]::Error.WriteLine("Partner topic $partnerTopic was not found in $($values.AZURE_RESOURCE_GROUP) (IDP_PARTNER_TOPIC_NAME): create it first")
        [Console]::Error.WriteLine('(see docs/deployment.md), or unset IDP_PARTNER_TOPIC_NAME.')
        exit 1
    }
    if ("$state".Trim() -ne 'Activated') {
        Write-Output "Activating partner topic $partnerTopic (was: $state)."
        az rest --method post --only-show-errors -o none --url "$partnerId/activate?api-version=$eventGridApi"
    }

    $identityType = "$(az rest --method get --only-show-errors --url "$partnerId`?api-version=$eventGridApi" --query 'identity.type' -o tsv)".Trim()
    $attached = @(az rest --method get --only-show-errors --url "$partnerId`?api-version=$eventGridApi" `
        --query 'identity.userAssignedIdentities && keys(identity.userAssignedIdentities)' -o tsv) |
        ForEach-Object { "$_".Trim() } | Where-Object { $_ -and $_ -ne 'None' }
    if (-not ($attached | Where-Object { $_ -ieq $values.AZURE_EVENTGRID_IDENTITY_ID })) {
        if ($identityType -and $identityType -ne 'None' -and $identityType -ne 'UserAssigned') {
            [Console]::Error.WriteLine("Partner topic $partnerTopic has identity type '$identityType'; Event Grid allows either a system-assigned")
            [Console]::Error.WriteLine("or user-assigned identity on a topic. Remove it, or attach $($values.AZURE_EVENTGRID_IDENTITY_ID) yourself.")
            exit 1
        }
        # Keep any user-assigned identities the topic already has.
        $identities = (@($values.AZURE_EVENTGRID_IDENTITY_ID) + @($attached) | ForEach-Object { "`"$_`":{}" }) -join ','
        Write-Output "Attaching the dead-letter identity to partner topic $partnerTopic."
        az rest --method patch --only-show-errors -o none --url "$partnerId`?api-version=$eventGridApi" `
            --headers 'Content-Type=application/json' `
            --body "{`"identity`":{`"type`":`"UserAssigned`",`"userAssignedIdentities`":{$identities}}}"
    }
}

# Retried: right after a first deployment Event Grid may not see the function yet although ARM lists it.
foreach ($attempt in 1..3) {
    az deployment group create --only-show-errors -o none `
        --resource-group $values.AZURE_RESOURCE_GROUP `
        --name 'idp-event-subscriptions' `
        --template-file (Join-Path $root 'infra' 'eventsubscriptions.bicep') `
        --parameters `
            "topicName=$($values.AZURE_EVENTGRID_TOPIC_NAME)" `
            "functionAppName=$($values.AZURE_FUNCTION_APP_NAME)" `
            "storageAccountName=$($values.AZURE_STORAGE_ACCOUNT_NAME)" `
            "deadLetterContainerName=$($values.AZURE_EVENTGRID_DEADLETTER_CONTAINER)" `
            "deadLetterIdentityId=$($values.AZURE_EVENTGRID_IDENTITY_ID)" `
            "partnerTopicName=$partnerTopic"
    if ($LASTEXITCODE -eq 0) {
        $which = if ($partnerTopic) { " (custom topic and partner topic $partnerTopic)" } else { '' }
        Write-Output "Event Grid subscriptions deliver IdP events to IdpEvents$which."
        exit 0
    }
    if ($attempt -lt 3) {
        Write-Output "Creating the subscriptions failed (attempt $attempt); retrying in $retrySeconds s."
        Start-Sleep -Seconds $retrySeconds
    }
}
[Console]::Error.WriteLine('Creating the Event Grid subscriptions failed; fix the error above and run azd hooks run postdeploy.')
exit 1
