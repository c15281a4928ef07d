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
local allow_all = ARGV[2] == ''
local written = 0
for i = 1, #ARGV - 3 do
  local entries = redis.call('XRANGE', KEYS[1 + i], '-', ARGV[1])
  if #entries > 0 then
    local parts = {}
    local jobspec, R = '', ''
    for _, entry in ipairs(entries) do
      local f = entry[2]
      local ev = {}
      for k = 1, #f, 2 do ev[f[k]] = f[k + 1] end
      jobspec = ev.jobspec or jobspec
      R = ev.R or R
      if (allow_all or allow[ev.name]) and not deny[ev.name] then
        local inner = string.sub(ev.context, 2, -2)
        local sep = ''
        if string.find(inner, '%S') then sep = ',' end
        table.insert(parts, '{"name":"' .. ev.name .. '","timestamp":' .. ev.timestamp .. sep .. inner .. '}')
      end
    end
    redis.call('XADD', KEYS[1], '*', 'v', '1', 'type', 'job', 'id', ARGV[3 + i],
      'eventlog', '[' .. table.concat(parts, ',') .. ']', 'jobspec', jobspec, 'R', R)
    written = written + 1
  end
end
return written
