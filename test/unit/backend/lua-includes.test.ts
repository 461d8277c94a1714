import { describe, expect, it } from 'vitest';
import { expandIncludes, type LuaReader } from '../../../src/backend/redis/lua-assembler.js';

/** A reader over in-memory files (paths relative to lua/), as the assembler reads lua/. */
const files =
  (entries: Record<string, string>): LuaReader =>
  (file) =>
    entries[file];

describe('-- @include lines (expandIncludes)', () => {
  it("replaces an include line by a marker and the file's text without its contract, indented like the line", () => {
    const read = files({ 'includes/b.lua': '--[[\nincludes/b.lua -- contract\n]]\nlocal x = 1\n\nif x then\n  y = x\nend\n' });
    const driver = 'a = 0\nif a then\n  -- @include "includes/b.lua"\nend\n';
    expect(expandIncludes(driver, 'driver.lua', read)).toBe(
      'a = 0\nif a then\n  -- lua/includes/b.lua\n  local x = 1\n\n  if x then\n    y = x\n  end\nend\n',
    );
  });

  it('expands an include inside an included file, indented by both include lines', () => {
    const read = files({
      'includes/outer.lua': '--[[ outer ]]\nif p then\n  -- @include "includes/inner.lua"\nend\n',
      'includes/inner.lua': '--[[ inner ]]\nq = 1\n',
    });
    expect(expandIncludes('do\n  -- @include "includes/outer.lua"\nend', 'driver.lua', read)).toBe(
      'do\n  -- lua/includes/outer.lua\n  if p then\n    -- lua/includes/inner.lua\n    q = 1\n  end\nend',
    );
  });

  it('a missing include is an error naming the including file and the missing path', () => {
    const read = files({ 'includes/outer.lua': '--[[ outer ]]\n-- @include "includes/gone.lua"\n' });
    expect(() => expandIncludes('-- @include "includes/outer.lua"', 'driver.lua', read)).toThrow(
      'meshlimit: includes/outer.lua: cannot include "includes/gone.lua": there is no lua/includes/gone.lua',
    );
  });

  it('a cyclic include is an error naming the including file and the cycle', () => {
    const read = files({
      'includes/a.lua': '--[[ a ]]\n-- @include "includes/b.lua"\n',
      'includes/b.lua': '--[[ b ]]\n  -- @include "includes/a.lua"\n',
    });
    expect(() => expandIncludes('-- @include "includes/a.lua"', 'driver.lua', read)).toThrow(
      'meshlimit: includes/b.lua: cyclic include of "includes/a.lua" (driver.lua -> includes/a.lua -> includes/b.lua -> includes/a.lua)',
    );
  });

  it('an included file that does not open with its --[[ ... ]] contract is an error', () => {
    const read = files({ 'includes/bare.lua': 'x = 1\n' });
    expect(() => expandIncludes('-- @include "includes/bare.lua"', 'driver.lua', read)).toThrow(
      'meshlimit: includes/bare.lua (included by driver.lua) must open with its contract, a --[[ ... ]] comment',
    );
  });

  it('a malformed include line is an error, not a comment left in the script', () => {
    expect(() => expandIncludes('  -- @include includes/b.lua\n', 'driver.lua', files({}))).toThrow(
      'meshlimit: driver.lua: malformed include line "-- @include includes/b.lua" (expected: -- @include "includes/<name>.lua")',
    );
  });

  it('an include path must stay inside lua/ and name a .lua file', () => {
    const read = files({ '../secret.lua': '--[[ x ]]\nx = 1\n' });
    for (const path of ['../secret.lua', '/etc/x.lua', 'includes/b.txt']) {
      expect(() => expandIncludes(`-- @include "${path}"`, 'driver.lua', read)).toThrow(
        `meshlimit: driver.lua: cannot include "${path}": expected a path relative to lua/ ending in .lua, without ".."`,
      );
    }
  });
});
