#!/usr/bin/env python3
"""Writes a manual page (man(7) roff) from a Markdown guide, so that
postern-sdk(3) is sdk/README.md and never drifts from it.

    md2man.py GUIDE.md NAME SECTION "one-line description" VERSION > page

The Markdown the guide uses is what is understood: headings (# is the
title, ## a section, ### a subsection), paragraphs, fenced code blocks,
lists (-, *, 1.) with indented continuation lines, tables (set as they
are written), and inline `code`, **bold**, *emphasis* and [links](url).
"""
import re
import sys


def escape(text):
    """Roff-safe text: backslashes, and dots or quotes that would start
    a request at the beginning of a line."""
    text = text.replace("\\", "\\e")
    return re.sub(r"^([.'])", r"\\&\1", text)


def inline(text):
    """Inline markup to font changes; code spans first, so that the
    asterisks of `char *p` stay asterisks."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`", text):
        out.append(spans(text[pos:m.start()]))
        out.append("\\fB" + escape(m.group(1)).replace("-", "\\-")
                   + "\\fR")
        pos = m.end()
    out.append(spans(text[pos:]))
    return escape_line_start("".join(out))


def spans(text):
    text = escape(text)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\\fI\1\\fR",
                  text)
    return text


def escape_line_start(line):
    return re.sub(r"^([.'])", r"\\&\1", line)


def convert(lines, name, section, description, version):
    out = ['.\\" Generated from the guide by man/md2man.py: do not edit.',
           '.TH %s %s "" "postern %s" "postern"' % (name.upper(), section,
                                                      version),
           ".SH NAME", "%s \\- %s" % (name, escape(description))]
    i, n = 0, len(lines)
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.extend(inline(p) for p in para)
            para.clear()

    while i < n:
        line = lines[i].rstrip("\n")
        if line.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < n and not lines[i].startswith("```"):
                out.append(escape(lines[i].rstrip("\n")) or "")
                i += 1
            out += [".fi", ".RE"]
            i += 1
            continue
        m = re.match(r"^(#{1,3}) (.*)", line)
        if m:
            flush()
            level, title = len(m.group(1)), m.group(2).strip()
            if level == 1:
                out += [".SH DESCRIPTION", ".PP", inline(title) + "."]
            elif level == 2:
                out.append('.SH "%s"' % inline(title).upper()
                           .replace('"', "'"))
            else:
                out.append('.SS "%s"' % inline(title).replace('"', "'"))
            i += 1
            continue
        if line.startswith("|"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            while i < n and lines[i].startswith("|"):
                row = lines[i].strip()
                if not re.fullmatch(r"[|:\- ]+", row):
                    cells = [c.strip() for c in row.strip("|").split("|")]
                    out.append(inline("   ".join(cells)))
                i += 1
            out += [".fi", ".RE"]
            continue
        m = re.match(r"^(\s*)([-*]|\d+\.) (.*)", line)
        if m:
            flush()
            mark = "\\(bu" if m.group(2) in "-*" else m.group(2)
            indent = len(m.group(1))
            item = [m.group(3)]
            i += 1
            while (i < n and lines[i].strip() and
                   not re.match(r"^\s*([-*]|\d+\.) ", lines[i]) and
                   lines[i].startswith(" ")):
                item.append(lines[i].strip())
                i += 1
            out.append(".IP %s %d" % (mark, 4 + indent))
            out.extend(inline(t) for t in item)
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: md2man.py GUIDE.md NAME SECTION DESCRIPTION "
                 "VERSION")
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.readlines()
    sys.stdout.write(convert(lines, *sys.argv[2:]))


if __name__ == "__main__":
    main()
