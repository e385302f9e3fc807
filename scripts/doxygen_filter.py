#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for kerascpp's headers, which are commented with plain // lines.

Doxygen only reads ///, //! and /** */ comments. Rather than rewrite every header, this filter turns
the headers' own conventions into Doxygen's, line for line (line numbers stay the same):
  - the comment block that opens a file describes the file (@file);
  - a block of // lines directly above a declaration documents it (///);
  - a // comment after a member or enumerator on the same line documents it (///<);
  - a section title ("// ---- Shapes") stays a plain comment.
Comments inside inline function bodies become /// too; Doxygen ignores those.
"""
import re
import sys

TRAILING = re.compile(r'^(?P<code>[^"]*?[;,])(?P<gap>\s+)//(?!/)(?P<text>.*)$')
LEADING = re.compile(r'^(?P<indent>\s*)//(?![/!])(?P<text>.*)$')
FORWARD = re.compile(r'^\s*(class|struct)\s+\w+;')   # a forward declaration's comment says where it is defined
SECTION = re.compile(r'^\s*// ----')   # a section title inside a header ("// ---- Shapes"), not a description


def filtered(lines):
    out = []
    in_file_comment = True   # the opening comment block, before any code
    for line in lines:
        m = LEADING.match(line)
        if in_file_comment:
            if m:
                # @file with no name (this file), at the end of the block's first line, makes the block
                # the file's description without adding a line.
                out.append('///' + m.group('text') + (' @file' if not out else '') + '\n')
                continue
            in_file_comment = False
            if out:
                out.append(line)   # the blank line or #pragma after the block, unchanged
                continue
        if m and SECTION.match(line):
            out.append(line)
            continue
        if m:
            out.append(m.group('indent') + '///' + m.group('text') + '\n')
            continue
        t = TRAILING.match(line.rstrip('\n'))
        if t and not t.group('code').lstrip().startswith(('return', '}')) and not FORWARD.match(t.group('code')):
            out.append(t.group('code') + t.group('gap') + '///<' + t.group('text') + '\n')
            continue
        out.append(line)
    return out


if __name__ == '__main__':
    with open(sys.argv[1], encoding='utf-8') as f:
        sys.stdout.write(''.join(filtered(f.readlines())))
