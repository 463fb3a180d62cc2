-- Argo CD health check for embedtokens.io/EmbedTokenRequest.
-- Healthy while the Secret holds a valid token (even if a refresh is failing:
-- the Ready message says so), Progressing while the first token is issued,
-- Degraded when a person must act (Stalled) or the token expired, Suspended
-- when spec.suspend is true.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the operator to issue a token"

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end

local ready = condition(obj.status.conditions, "Ready")
local stalled = condition(obj.status.conditions, "Stalled")
local reconciling = condition(obj.status.conditions, "Reconciling")

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Refresh is suspended"
  if ready ~= nil and ready.message ~= nil then
    hs.message = ready.message
  end
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ready.reason
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason == "TokenExpired" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.reason .. ": " .. (reconciling.message or "")
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason ~= "Issuing" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end
return hs
