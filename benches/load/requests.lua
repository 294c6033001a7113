-- wrk script: sends, in order, the deliveries of a list written by gen_requests.py, as
-- POST requests to the URL's path. Usage: wrk ... -s requests.lua URL -- LIST_FILE [SYNC]
--
-- Each request is built when it is sent, from its own header block and the shared body parts,
-- so a list of 64 KiB bodies costs memory only for the headers. After the last entry the list
-- starts again, and done() prints how many times that happened: with replay detection on, a
-- repeated delivery gets a 200 duplicate response from hookgate and is not forwarded.
--
-- With SYNC, init() creates the file SYNC.ready once the list is loaded and waits until the
-- file SYNC.go exists. wrk starts sending right after init() returns, so counters that a
-- caller reads between the two files exclude the loading and include every request.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local heads = {}
local ids = {}
local count = 0
local next_index = 0
local body_head, body_tail
wraps = 0

function init(args)
   local list = args[1]
   if list == nil then
      error("usage: wrk ... -s requests.lua URL -- LIST_FILE [SYNC]")
   end
   local lines = io.lines(list)
   body_head = lines()
   body_tail = lines()
   local id_length = nil
   for line in lines do
      local fields = {}
      for field in string.gmatch(line, "[^\t]+") do
         table.insert(fields, field)
      end
      local id = table.remove(fields, 1)
      id_length = id_length or #id
      if #id ~= id_length then
         error("delivery ids in " .. list .. " differ in length, so bodies would differ in size")
      end
      local length = #body_head + #id + #body_tail
      local head = "POST " .. wrk.path .. " HTTP/1.1\r\n"
         .. "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n"
         .. "Content-Length: " .. length .. "\r\n"
      for _, header in ipairs(fields) do
         head = head .. header .. "\r\n"
      end
      count = count + 1
      heads[count] = head .. "\r\n"
      ids[count] = id
   end
   if count == 0 then
      error("no deliveries in " .. list)
   end
   if args[2] ~= nil then
      wait_for_go(args[2])
   end
end

function wait_for_go(sync)
   io.open(sync .. ".ready", "w"):close()
   for _ = 1, 6000 do
      local go = io.open(sync .. ".go", "r")
      if go ~= nil then
         go:close()
         return
      end
      os.execute("sleep 0.01")
   end
   error(sync .. ".go did not appear within 60 s")
end

function request()
   next_index = next_index + 1
   if next_index > count then
      next_index = 1
      wraps = wraps + 1
   end
   return heads[next_index] .. body_head .. ids[next_index] .. body_tail
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("list restarted: %d times\n", thread:get("wraps")))
   end
end
