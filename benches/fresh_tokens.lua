-- wrk script for benches/load.sh: every request carries a token the server
-- has not seen, taken in order from the file $TOKENS_FILE (one a line).
-- Run with one wrk thread (-t1): each thread walks the whole file.

local tokens = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
end

function request()
  i = i + 1
  if i > #tokens then
    -- Past the pool, tokens repeat (cache hits); load.sh reports it.
    i = 1
  end
  return wrk.format("GET", "/orders/1", { ["Authorization"] = tokens[i] })
end
