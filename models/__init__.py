"""Pure domain: events, enums, rules. No I/O, no Faust, no asyncpg."""
