-- Argo CD health check for serving.kserve.io/InferenceService and LLMInferenceService,
-- rendered by kitchen.
-- Same rules as kitchen_gitops/conform/readiness.py (both tested on KServe's real statuses):
-- Ready -> Healthy; a failed model load (a crash-looping predictor: modelStatus
-- BlockedByFailedLoad / FailedToLoad / lastFailureInfo) or a condition failed for good ->
-- Degraded, so the sync fails instead of waiting forever; Stopped -> Suspended;
-- anything else -> Progressing.
local hs = { status = "Progressing", message = "waiting for KServe to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local function text(c)
  local t = tostring(c.type) .. " is " .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    t = t .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    t = t .. ": " .. c.message
  end
  return t
end

local failed_reasons = {
  RevisionFailed = true, ProgressDeadlineExceeded = true, ContainerMissing = true,
  ReplicaFailure = true, FailedCreate = true, InvalidSpec = true,
  CombineBaseError = true, ConfigNotFound = true, InvalidRenderedConfig = true,
}

local by_type = {}
for _, c in ipairs(obj.status.conditions) do
  if c.type ~= nil then
    by_type[c.type] = c
  end
end

if by_type["Stopped"] ~= nil and by_type["Stopped"].status == "True" then
  return { status = "Suspended", message = "the InferenceService is stopped" }
end
local main = by_type["MainWorkloadReady"]
if main ~= nil and main.status == "False" and main.reason == "Stopped" then
  return { status = "Suspended", message = "the LLMInferenceService is stopped" }
end

local ms = obj.status.modelStatus or {}
local failure = ms.lastFailureInfo
local target = ""
if ms.states ~= nil and ms.states.targetModelState ~= nil then
  target = ms.states.targetModelState
end
local transition = ms.transitionStatus or ""
if transition == "BlockedByFailedLoad" or transition == "InvalidSpec"
    or target == "FailedToLoad" or (failure ~= nil and next(failure) ~= nil) then
  local what = transition
  if what == "" then what = target end
  if what == "" then what = "failed" end
  local parts = { "model " .. what }
  if failure ~= nil and next(failure) ~= nil then
    local f = (failure.reason or "failure") .. ": " .. (failure.message or "")
    parts[#parts + 1] = (f:gsub(":%s*$", ""))
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.status == "False" and c.type ~= "Stopped" then
      parts[#parts + 1] = text(c)
    end
  end
  return { status = "Degraded", message = table.concat(parts, "; ") }
end

if by_type["Ready"] ~= nil and by_type["Ready"].status == "True" then
  return { status = "Healthy", message = "Ready" }
end

local failed, pending = {}, {}
for _, c in ipairs(obj.status.conditions) do
  if c.status == "False" and c.reason ~= nil and failed_reasons[c.reason] then
    failed[#failed + 1] = text(c)
  end
  if c.status ~= "True" and c.type ~= "Stopped" then
    pending[#pending + 1] = text(c)
  end
end
if #failed > 0 then
  return { status = "Degraded", message = table.concat(failed, "; ") }
end
if #pending > 0 then
  hs.message = table.concat(pending, "; ")
else
  hs.message = "not Ready yet"
end
return hs
