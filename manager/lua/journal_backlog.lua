-- journal_backlog.lua: write one backlog entry per job into a full-journal reply stream:
-- the job's eventlog up to the snapshot cursor (as a JSON array of events), its redacted
-- jobspec (from the submit entry) and its R (from the alloc entry, if before the cursor;
-- a later alloc brings R live).
-- Jobs with no event up to the cursor (purged since) are skipped.
--
-- KEYS[1] reply stream
-- KEYS[1+i] job i eventlog (i = 1..n)
-- ARGV[1] snapshot cursor (journal id)   ARGV[2] allowed names, comma separated ('' = all)
-- ARGV[3] denied names, comma separated   ARGV[4..] job ids (i = 1..n)
-- Returns the number of entries written.
local function name_set(text)
  local set = {}
  for name in string.gmatch(text, '[^,]+') do set[name] = true end
  return set
end
local allow, deny = name_set(ARGV[2]), name_set(ARGV[3])
local filtered = ARGV[2] ~= '' or ARGV[3] ~= ''
local written = 0
for i = 1, #ARGV - 3 do
  local entries = redis.call('XRANGE', KEYS[1 + i], '-', ARGV[1])
  if #entries > 0 then
    local parts, n = {}, 0
    local jobspec, R = '', ''
    for _, entry in ipairs(entries) do
      -- fields as post_events.lua writes them: name, timestamp, context [, jobspec | R]
      local f = entry[2]
      local name, ctx = f[2], f[6]
      if f[7] == 'jobspec' then jobspec = f[8] elseif f[7] == 'R' then R = f[8] end
      if not filtered or ((ARGV[2] == '' or allow[name]) and not deny[name]) then
        n = n + 1
        if ctx == '{}' then
          parts[n] = '{"name":"' .. name .. '","timestamp":' .. f[4] .. '}'
        else
          parts[n] = '{"name":"' .. name .. '","timestamp":' .. f[4] .. ',' .. string.sub(ctx, 2, -2) .. '}'
        end
      end
    end
    redis.call('XADD', KEYS[1], '*', 'v', '1', 'type', 'job', 'id', ARGV[3 + i],
      'eventlog', '[' .. table.concat(parts, ',') .. ']', 'jobspec', jobspec, 'R', R)
    written = written + 1
  end
end
return written
