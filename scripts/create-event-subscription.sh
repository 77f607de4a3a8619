#!/usr/bin/env bash
# azd postdeploy hook: creates (or updates) the Event Grid subscriptions that deliver IdP events to the IdpEvents
# function, by deploying infra/eventsubscriptions.bicep into the resource group.
#
# Why a hook: Event Grid validates an AzureFunction destination when the subscription is created, so IdpEvents
# must already be deployed; in `azd up` this runs after provision and deploy, so one command does everything.
# Idempotent (an ARM deployment of the same template), so it runs after every `azd deploy`.
#
# With IDP_PARTNER_TOPIC_NAME set (a Microsoft Graph or Auth0 partner topic in the resource group), it also
# activates that partner topic if it was never activated and attaches the dead-letter identity to it, because a
# partner topic is created by the partner without any identity and its subscription dead-letters with one.
#
# Needs the Azure CLI signed in (az login) to the subscription azd deploys to.
# Inputs (azd passes the environment's values): AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP,
# AZURE_FUNCTION_APP_NAME, AZURE_EVENTGRID_TOPIC_NAME, AZURE_STORAGE_ACCOUNT_NAME,
# AZURE_EVENTGRID_DEADLETTER_CONTAINER, AZURE_EVENTGRID_IDENTITY_ID (outputs of infra/main.bicep);
# optional IDP_PARTNER_TOPIC_NAME. Set CREATE_EVENT_SUBSCRIPTION=false to skip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eventgrid_api="2022-06-15"
web_api="2024-04-01"

if [ "${CREATE_EVENT_SUBSCRIPTION:-true}" = "false" ]; then
  echo "CREATE_EVENT_SUBSCRIPTION=false: not creating the Event Grid subscriptions."
  exit 0
fi

missing=""
for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_EVENTGRID_TOPIC_NAME \
  AZURE_STORAGE_ACCOUNT_NAME AZURE_EVENTGRID_DEADLETTER_CONTAINER AZURE_EVENTGRID_IDENTITY_ID; do
  if [ -z "${!name:-}" ] && command -v azd >/dev/null 2>&1; then
    value="$(azd env get-value "$name" 2>/dev/null || true)"
    if [ -n "$value" ]; then
      export "$name=$value"
    fi
  fi
  if [ -z "${!name:-}" ]; then
    missing="$missing $name"
  fi
done
if [ -n "$missing" ]; then
  echo "Missing azd environment values:$missing. Run azd provision (infra/main.bicep outputs them) first." >&2
  exit 1
fi

if ! az account show --only-show-errors -o none 2>/dev/null; then
  echo "The Azure CLI is not signed in: run az login, then azd hooks run postdeploy." >&2
  exit 1
fi
az account set --subscription "$AZURE_SUBSCRIPTION_ID" --only-show-errors

group_id="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$AZURE_RESOURCE_GROUP"
function_id="$group_id/providers/Microsoft.Web/sites/$AZURE_FUNCTION_APP_NAME/functions/IdpEvents"

# The function list of a Flex Consumption app is refreshed shortly after the package is deployed.
found=""
for attempt in $(seq 1 "${FUNCTION_WAIT_ATTEMPTS:-30}"); do
  if az rest --method get --only-show-errors -o none --url "$function_id?api-version=$web_api" 2>/dev/null; then
    found="yes"
    break
  fi
  echo "IdpEvents is not listed on $AZURE_FUNCTION_APP_NAME yet (attempt $attempt); retrying in 10 s."
  sleep "${WAIT_SECONDS:-10}"
done
if [ -z "$found" ]; then
  echo "The IdpEvents function does not exist on $AZURE_FUNCTION_APP_NAME: check the deployment (azd deploy) and the" >&2
  echo "app's start-up log, then run azd hooks run postdeploy." >&2
  exit 1
fi

partner_topic="${IDP_PARTNER_TOPIC_NAME:-}"
if [ -n "$partner_topic" ]; then
  partner_id="$group_id/providers/Microsoft.EventGrid/partnerTopics/$partner_topic"
  if ! state="$(az rest --method get --only-show-errors --url "$partner_id?api-version=$eventgrid_api" \
      --query properties.activationState -o tsv)"; then
    echo "Partner topic $partner_topic was not found in $AZURE_RESOURCE_GROUP (IDP_PARTNER_TOPIC_NAME): create it first" >&2
    echo "(see docs/deployment.md), or unset IDP_PARTNER_TOPIC_NAME." >&2
    exit 1
  fi
  if [ "$state" != "Activated" ]; then
    echo "Activating partner topic $partner_topic (was: $state)."
    az rest --method post --only-show-errors -o none --url "$partner_id/activate?api-version=$eventgrid_api"
  fi

  identity_type="$(az rest --method get --only-show-errors --url "$partner_id?api-version=$eventgrid_api" \
    --query "identity.type" -o tsv)"
  attached="$(az rest --method get --only-show-errors --url "$partner_id?api-version=$eventgrid_api" \
    --query "identity.userAssignedIdentities && keys(identity.userAssignedIdentities)" -o tsv)"
  if ! printf '%s\n' "$attached" | grep -qixF -- "$AZURE_EVENTGRID_IDENTITY_ID"; then
    case "$identity_type" in
      ""|None|UserAssigned) ;;
      *)
        echo "Partner topic $partner_topic has identity type '$identity_type'; Event Grid allows either a system-assigned" >&2
        echo "or user-assigned identity on a topic. Remove it, or attach $AZURE_EVENTGRID_IDENTITY_ID yourself." >&2
        exit 1
        ;;
    esac
    # Keep any user-assigned identities the topic already has.
    identities="\"$AZURE_EVENTGRID_IDENTITY_ID\":{}"
    while IFS= read -r existing; do
      if [ -n "$existing" ] && [ "$existing" != "None" ]; then
        identities="$identities,\"$existing\":{}"
      fi
    done <<< "$attached"
    echo "Attaching the dead-letter identity to partner topic $partner_topic."
    az rest --method patch --only-show-errors -o none --url "$partner_id?api-version=$eventgrid_api" \
      --headers "Content-Type=application/json" \
      --body "{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{$identities}}}"
  fi
fi

# Retried: right after a first deployment Event Grid may not see the function yet although ARM lists it.
for attempt in 1 2 3; do
  if az deployment group create --only-show-errors -o none \
      --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "idp-event-subscriptions" \
      --template-file "$root/infra/eventsubscriptions.bicep" \
      --parameters \
        topicName="$AZURE_EVENTGRID_TOPIC_NAME" \
        functionAppName="$AZURE_FUNCTION_APP_NAME" \
        storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
        deadLetterContainerName="$AZURE_EVENTGRID_DEADLETTER_CONTAINER" \
        deadLetterIdentityId="$AZURE_EVENTGRID_IDENTITY_ID" \
        partnerTopicName="$partner_topic"; then
    echo "Event Grid subscriptions deliver IdP events to IdpEvents${partner_topic:+ (custom topic and partner topic $partner_topic)}."
    exit 0
  fi
  if [ "$attempt" -lt 3 ]; then
    echo "Creating the subscriptions failed (attempt $attempt); retrying in 30 s."
    sleep "${RETRY_SECONDS:-30}"
  fi
done
echo "Creating the Event Grid subscriptions failed; fix the error above and run azd hooks run postdeploy." >&2
exit 1
