-- wrk script: a CRUD mix of Patients, 40% POST /Patient, 40% GET /Patient/{id}, 20% PUT /Patient/{id}.
--
--   wrk -t2 -c32 -d15s --latency -s bench/crud_mix.lua http://127.0.0.1:8080 -- IDS_FILE [RUN_TAG [MIX]]
--
-- IDS_FILE holds ids of Patients that exist, one a line (bench/crud_mix.py seeds them); every thread reads
-- it in init. RUN_TAG (a number, default 0) goes into the POSTed identifiers so that they stay unique
-- across runs on one store. MIX ("P,G,U" weights, default "2,2,1") changes the mix, for diagnosis only.
-- The path of the URL, if any, is put before /Patient.
-- The operation follows a fixed cycle of five (POST, GET, PUT, POST, GET), so the mix is exactly 40/40/20
-- from any start; ids for GET and PUT are drawn at random (seeded per thread, so runs are repeatable).
-- POST bodies carry an identifier unique to thread and request; PUT bodies carry the id of the URL and
-- a changed telecom/address. Every non-2xx answer is counted, and done() prints one line:
--   CRUD_MIX_RESULT {"requests":..,"p50_us":..,"p95_us":..,"p99_us":..,"non2xx":..,"statuses":{..},...}

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local function read_ids(path)
  local ids = {}
  local f = io.open(path, "r")
  if f == nil then
    error("crud_mix.lua: cannot open the ids file " .. tostring(path))
  end
  for line in f:lines() do
    local id = line:match("^%s*(.-)%s*$")
    if id ~= "" then
      ids[#ids + 1] = id
    end
  end
  f:close()
  if #ids == 0 then
    error("crud_mix.lua: the ids file " .. path .. " holds no id")
  end
  return ids
end

local ids
local base = ""
local run_tag = 0
local headers = {
  ["Content-Type"] = "application/fhir+json",
  ["Accept"] = "application/fhir+json",
}
local get_headers = { ["Accept"] = "application/fhir+json" }
-- CRUD_MIX_AUTHORIZATION, when set, is sent as the Authorization header (e.g. "Bearer eyJ...")
local authorization = os.getenv("CRUD_MIX_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  headers["Authorization"] = authorization
  get_headers["Authorization"] = authorization
end
local cycle = { "POST", "GET", "PUT", "POST", "GET" }
local step = 0

-- per-thread tallies, read by done() through thread:get
non2xx = 0
responses = 0
sent_post, sent_get, sent_put = 0, 0, 0
statuses = {}
first_error = ""

function init(args)
  if args[1] == nil then
    error("crud_mix.lua: pass the ids file after --, e.g. -- /tmp/ids.txt")
  end
  ids = read_ids(args[1])
  run_tag = tonumber(args[2] or "0") or 0
  if wrk.path ~= nil and wrk.path ~= "/" then
    base = wrk.path:gsub("/+$", "")
  end
  if args[3] ~= nil and args[3] ~= "" then
    -- MIX as "P,G,U" weights (e.g. "2,2,1", the default; "0,1,0" reads only): a cycle of P POSTs, G GETs
    -- and U PUTs, interleaved
    local w = {}
    for n in args[3]:gmatch("%d+") do w[#w + 1] = tonumber(n) end
    local left = { POST = w[1] or 0, GET = w[2] or 0, PUT = w[3] or 0 }
    cycle = {}
    while left.POST + left.GET + left.PUT > 0 do
      for _, op in ipairs({ "POST", "GET", "PUT" }) do
        if left[op] > 0 then
          cycle[#cycle + 1] = op
          left[op] = left[op] - 1
        end
      end
    end
    if #cycle == 0 then error("crud_mix.lua: the mix " .. args[3] .. " has no operation") end
  end
  math.randomseed(7919 * (thread_no or 1))
  step = (thread_no or 1) - 1
end

local given = { "Mohammed", "Fatimah", "Abdullah", "Noura", "Khalid", "Sarah", "Omar", "Layla" }
local family = { "Alharbi", "Alqahtani", "Alghamdi", "Alzahrani", "Aldosari", "Alshehri", "Alotaibi" }
local cities = { "Riyadh", "Jeddah", "Dammam", "Makkah", "Madinah", "Abha" }

local function patient(id, n)
  local g = given[(n % #given) + 1]
  local f = family[(n % #family) + 1]
  local city = cities[(n % #cities) + 1]
  local id_field = ""
  if id ~= nil then
    id_field = '"id":"' .. id .. '",'
  end
  return '{"resourceType":"Patient",' .. id_field ..
    '"identifier":[{"use":"official","type":{"coding":[{"system":' ..
    '"http://nphies.sa/terminology/CodeSystem/patient-identifier-type","code":"NI","display":"National ID"}]},' ..
    '"system":"http://nphies.sa/identifier/nationalid","value":"' .. string.format("%d%02d%09d", run_tag, thread_no or 1, n) ..
    '"}],"active":true,' ..
    '"name":[{"use":"official","text":"' .. g .. ' ' .. f .. '","family":"' .. f .. '","given":["' .. g .. '"]}],' ..
    '"telecom":[{"system":"phone","value":"+9665' .. string.format("%08d", n % 100000000) .. '","use":"mobile"}],' ..
    '"gender":"' .. ((n % 2 == 0) and "male" or "female") .. '",' ..
    '"birthDate":"' .. string.format("%04d-%02d-%02d", 1950 + n % 60, 1 + n % 12, 1 + n % 28) .. '",' ..
    '"address":[{"use":"home","type":"physical","line":["' .. (n % 900 + 1) .. ' King Fahd Road"],' ..
    '"city":"' .. city .. '","postalCode":"' .. string.format("%05d", 11000 + n % 9000) ..
    '","country":"SA"}],"maritalStatus":{"coding":[{"system":' ..
    '"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M"}]}}'
end

function request()
  step = step + 1
  counter = counter + 1
  local op = cycle[((step - 1) % #cycle) + 1]
  if op == "POST" then
    sent_post = sent_post + 1
    return wrk.format("POST", base .. "/Patient", headers, patient(nil, counter))
  end
  local id = ids[math.random(#ids)]
  if op == "GET" then
    sent_get = sent_get + 1
    return wrk.format("GET", base .. "/Patient/" .. id, get_headers)
  end
  sent_put = sent_put + 1
  return wrk.format("PUT", base .. "/Patient/" .. id, headers, patient(id, counter))
end

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local total_non2xx, total_responses, post, get, put = 0, 0, 0, 0, 0
  local all_statuses = {}
  local err = ""
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    total_responses = total_responses + (thread:get("responses") or 0)
    post = post + (thread:get("sent_post") or 0)
    get = get + (thread:get("sent_get") or 0)
    put = put + (thread:get("sent_put") or 0)
    local st = thread:get("statuses") or {}
    for code, n in pairs(st) do
      all_statuses[code] = (all_statuses[code] or 0) + n
    end
    local e = thread:get("first_error") or ""
    if err == "" and e ~= "" then err = e end
  end
  local parts = {}
  for code, n in pairs(all_statuses) do
    parts[#parts + 1] = string.format('"%d":%d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'CRUD_MIX_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p75_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"responses":%d,"non2xx":%d,"statuses":{%s},"sent":{"POST":%d,"GET":%d,"PUT":%d},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"first_error":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean,
    total_responses, total_non2xx, table.concat(parts, ","), post, get, put,
    e.connect, e.read, e.write, e.status, e.timeout, json_string(err)))
  if total_non2xx > 0 then
    io.write(string.format("CRUD_MIX: %d NON-2XX RESPONSES; first: %s\n", total_non2xx, err))
  end
end
