#!/usr/bin/env bash
# azd postprovision hook: grants the function app's managed identity the Microsoft Graph application permission
# User.Read.All, which Events__GraphEndpoint lookups need (Microsoft.Graph.UserUpdated events carry only the user's
# id; the app reads accountEnabled). Bicep cannot grant Graph app roles, so this runs after every provision and is
# idempotent: an existing assignment is left alone.
#
# Needs the Azure CLI signed in (az login) to the tenant, as a user who may grant Microsoft Graph application
# permissions (Privileged Role Administrator or Global Administrator). Without that right the grant fails with a
# message naming the command an administrator can run; azd continues (continueOnError in azure.yaml) and
# UserUpdated events are retried by Event Grid, then dead-lettered, until the permission is granted.
#
# Inputs (azd passes the environment's values): AZURE_FUNCTION_PRINCIPAL_ID (output of infra/main.bicep).
# Set GRANT_GRAPH_PERMISSION=false (azd env set) to skip, e.g. when no Microsoft Graph partner topic is used.
set -euo pipefail

graph_app_id="00000003-0000-0000-c000-000000000000"   # Microsoft Graph (the same appId in every tenant)
user_read_all_id="df021288-bdef-4463-88db-98f22de89214" # User.Read.All (Application)

if [ "${GRANT_GRAPH_PERMISSION:-true}" = "false" ]; then
  echo "GRANT_GRAPH_PERMISSION=false: not granting Microsoft Graph User.Read.All."
  exit 0
fi

principal_id="${AZURE_FUNCTION_PRINCIPAL_ID:-}"
if [ -z "$principal_id" ] && command -v azd >/dev/null 2>&1; then
  principal_id="$(azd env get-value AZURE_FUNCTION_PRINCIPAL_ID 2>/dev/null || true)"
fi
if [ -z "$principal_id" ]; then
  echo "AZURE_FUNCTION_PRINCIPAL_ID is not set: run azd provision first." >&2
  exit 1
fi

if ! az account show --only-show-errors -o none 2>/dev/null; then
  echo "The Azure CLI is not signed in: run az login (same tenant as azd), then azd hooks run postprovision." >&2
  exit 1
fi

# Microsoft Graph's base URL in this cloud (https://graph.microsoft.com in the public cloud).
graph="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv 2>/dev/null || true)"
graph="${graph:-https://graph.microsoft.com/}"
graph="${graph%/}"

graph_sp_id="$(az ad sp show --id "$graph_app_id" --query id -o tsv --only-show-errors)"
role_id="$(az ad sp show --id "$graph_app_id" --query "appRoles[?value=='User.Read.All' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv --only-show-errors)"
if [ -z "$role_id" ]; then
  role_id="$user_read_all_id"
elif [ "$role_id" != "$user_read_all_id" ]; then
  echo "Note: User.Read.All has app role id $role_id in this cloud (public cloud: $user_read_all_id)."
fi

grant_command="az rest --method post --url '$graph/v1.0/servicePrincipals/$graph_sp_id/appRoleAssignedTo' --headers Content-Type=application/json --body '{\"principalId\":\"$principal_id\",\"resourceId\":\"$graph_sp_id\",\"appRoleId\":\"$role_id\"}'"

# A managed identity created a moment ago may not have replicated to Microsoft Graph yet: retry for a few minutes.
assigned=""
for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
  if assigned="$(az rest --method get --only-show-errors \
      --url "$graph/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
      --query "length(value[?resourceId=='$graph_sp_id' && appRoleId=='$role_id'])" -o tsv 2>/dev/null)"; then
    break
  fi
  assigned=""
  echo "The identity $principal_id is not visible in Microsoft Graph yet (attempt $attempt); retrying in 15 s."
  sleep "${GRAPH_RETRY_SECONDS:-15}"
done
if [ -z "$assigned" ]; then
  echo "Could not read the app role assignments of $principal_id. An administrator can grant the permission with:" >&2
  echo "  $grant_command" >&2
  exit 1
fi

if [ "$assigned" != "0" ]; then
  echo "Microsoft Graph User.Read.All is already granted to $principal_id."
  exit 0
fi

body="{\"principalId\":\"$principal_id\",\"resourceId\":\"$graph_sp_id\",\"appRoleId\":\"$role_id\"}"
if ! az rest --method post --only-show-errors -o none \
    --url "$graph/v1.0/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
    --headers "Content-Type=application/json" --body "$body"; then
  echo "Granting Microsoft Graph User.Read.All failed: the signed-in user needs Privileged Role Administrator" >&2
  echo "(or Global Administrator). An administrator can grant it with:" >&2
  echo "  $grant_command" >&2
  exit 1
fi
echo "Granted Microsoft Graph User.Read.All to the function app's identity $principal_id."
