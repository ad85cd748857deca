-- wrk script for bench/search_load.py: one search kind per run, values picked at random per request.
--   wrk ... -s bench/search_load.lua URL -- <kind> <data file>
-- The data file has one "key<TAB>value" per line: nid, pid, prefix, month, owner.
-- done() prints one JSON line: {"requests":..,"rps":..,"p50_ms":..,"p95_ms":..,"p99_ms":..,"non2xx":..,"socket_errors":..}

local NID = "http://nphies.sa/identifier/nationalid%7C"
local kind, data = "identifier", {}
local threads = {}

local function load(path)
  local values = {}
  for line in io.lines(path) do
    local key, value = line:match("^([^\t]+)\t(.*)$")
    if key then
      values[key] = values[key] or {}
      table.insert(values[key], value)
    end
  end
  return values
end

local function pick(key)
  local list = data[key]
  return list[math.random(#list)]
end

local paths = {
  identifier = function() return "/Patient?identifier=" .. NID .. pick("nid") end,
  name = function() return "/Patient?name=" .. pick("prefix") .. "&_count=20" end,
  birthdate = function()
    local month = pick("month")
    return "/Patient?birthdate=ge" .. month .. "-01&birthdate=lt" .. month .. "-08&_count=20"
  end,
  claim = function() return "/Claim?patient=Patient/" .. pick("pid") .. "&status=active" end,
  portal = function()
    return "/Task?owner=Organization/" .. pick("owner")
      .. "&status=requested,in-progress&_sort=-_lastUpdated&_include=Task:focus&_count=20"
  end,
  chain = function() return "/Claim?patient.identifier=" .. NID .. pick("nid") end,
  read = function() return "/Patient/" .. pick("pid") end,
}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  kind = args[1]
  data = load(args[2])
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  wrk.headers["Accept"] = "application/fhir+json"
end

function request()
  return wrk.format("GET", paths[kind]())
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"rps":%.1f,"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
