-- wrk script for tests/harness/load.py: checks every response byte for byte.
-- usage: wrk ... -s load_check.lua URL -- EXPECTED_BODY_FILE
-- A response whose status is not 200 or whose body differs from the file counts as bad; done()
-- prints "lua_good=N lua_bad=N" summed over wrk's threads (each has its own Lua state).
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local f = assert(io.open(args[1], "rb"))
    expected = f:read("*a")
    f:close()
    good, bad = 0, 0
end

function response(status, headers, body)
    if status == 200 and body == expected then
        good = good + 1
    else
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local g, b = 0, 0
    for _, t in ipairs(threads) do
        g = g + t:get("good")
        b = b + t:get("bad")
    end
    io.write(string.format("lua_good=%d lua_bad=%d\n", g, b))
end
