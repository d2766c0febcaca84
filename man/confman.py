#!/usr/bin/env python3
"""Writes postern.conf(5) from the schema posternd itself prints
(`posternd -n -a -v`: every key of the core and of the modules loaded, its
default and its one-line documentation), so the manual cannot drift from
the code.

    confman.py POSTERND MODULE.so... >postern.conf.5

The modules are loaded with the least configuration they accept (a users
file, a mail location, one milter, one rate limit); those few values are shown as placeholders.
"""
import os
import re
import subprocess
import sys
import tempfile

PLACEHOLDERS = {"users": '"users"', "location": '"/var/lib/postern/mail/%d/%n"'}
SEEN_AS = {}


def roff(text):
    """Plain text as a roff line: backslashes and leading dots escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return ("\\&" + text) if text.startswith((".", "'")) else text


def schema(posternd, modules):
    with tempfile.TemporaryDirectory() as d:
        users = os.path.join(d, "users")
        open(users, "w").close()
        conf = os.path.join(d, "postern.conf")
        with open(conf, "w") as f:
            f.write('modules = [ %s ];\n' % ", ".join('"%s"' % m
                                                     for m in modules))
            f.write('auth_passwd = { users = "%s"; aliases = ""; };\n'
                    % users)
            f.write('storage_maildir = { location = "%s/%%d/%%n"; };\n' % d)
            f.write('filter_milter = { milters = ( { name = "example"; '
                    'socket = "inet:127.0.0.1:8891"; } ); };\n')
            f.write('filter_ratelimit = { limits = ( { name = "example"; '
                    'count = "messages"; per = "client"; max = 100; } ); };\n')
            f.write('filter_dnsbl = { zones = ( { zone = "bl.example"; } '
                    '); };\n')
        p = subprocess.run([posternd, "-n", "-a", "-v", "-c", conf],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            sys.exit("confman.py: posternd -n -v failed:\n" + p.stderr)
        return p.stdout


def page(text):
    out = []
    doc = []
    group = None
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        unset = re.match(r"^# (\w+): not set$", s)
        if unset:
            # A key with no default: documented, with no value.
            s = "%s = (not set);" % unset.group(1)
        elif s.startswith("#"):
            doc.append(s[1:].strip())
            continue
        m = re.match(r"^(\w+) = \{$", s)
        if m:
            group = m.group(1)
            out.append(".SS %s" % roff(group))
            out.append("The group \\fB%s\\fR.%s" % (
                roff(group), (" " + roff(" ".join(doc))) if doc else ""))
            doc = []
            continue
        if s == "};":
            group = None
            continue
        m = re.match(r"^(\w+) = (.*);$", s)
        if not m:
            continue
        key, value = m.groups()
        if key == "modules" and group is None:
            value = "[ ]"
        if key in PLACEHOLDERS and group is not None:
            value = PLACEHOLDERS[key]
        if group is None and not out:
            out.append(".SS Core settings (top level)")
        out.append(".TP")
        out.append("\\fB%s\\fR = %s" % (roff(key), roff(value)))
        out.append(roff(" ".join(doc)) if doc else "(no description)")
        doc = []
    return "\n".join(out)


HEAD = r""".TH POSTERN.CONF 5 "" "postern" "File Formats"
.SH NAME
postern.conf \- configuration of the postern mail server
.SH SYNOPSIS
.B /etc/postern/postern.conf
.br
.B /etc/postern/conf.d/*.conf
.SH DESCRIPTION
posternd reads
.B postern.conf
in libconfig syntax, then every
.B conf.d/*.conf
beside it in lexical order: a later file's value replaces an earlier one,
and groups merge key by key.
Each module reads the group named after it.
An unknown key, a wrong type or a value out of range is an error that names
the file and the line;
.B posternd \-t
checks a configuration and
.B posternd \-n
prints it with every default filled in.
.PP
Sizes are written like \fB"256K"\fP, \fB"25M"\fP; durations like
\fB"30s"\fP, \fB"5m"\fP, \fB"1h"\fP.
.SH LISTENERS
A protocol module's \fBlisten\fP key is a list of groups, one per socket:
.TP
\fBname\fP, \fBaddress\fP, \fBport\fP
shown in logs; \fB"*"\fP for every address, an IPv6 address, or a unix path;
the port (required).
.TP
\fBtls\fP = false
implicit TLS (RFC 8314).
.TP
\fBmax_conns\fP = 1024
connections per worker.
.TP
\fBmax_per_ip\fP = 20
connections from one address (SMTP, IMAP, POP3); 0: no limit.
.TP
\fBjunk_command_limit\fP = 100
commands that do nothing (NOOP, HELP, CAPA, RSET, VRFY) per session before
a message or a login; 0: no limit.
.SH RELAY ROUTES
The relay's \fBroutes\fP key is a list of groups; a recipient's route is
the one of its exact domain, then of the longest \fB*.domain\fP wildcard,
then \fB*\fP:
.TP
\fBdomain\fP
a domain, \fB*.domain\fP (below it) or \fB*\fP.
.TP
\fBvia\fP
\fBsmtp:[host]:port\fP (no MX lookup), \fBsmtp:host\fP, \fBlmtp:host:port\fP,
\fBlmtp:unix:/path\fP or \fBmx\fP.
.TP
\fBtls\fP = "may"
\fBnone\fP, \fBmay\fP, \fBencrypt\fP (STARTTLS required) or \fBverify\fP
(required, certificate checked against \fBtls_ca\fP and the host name).
.TP
\fBauth_file\fP
a file, readable by its owner only, whose first line is
\fIuser\fP:\fIpassword\fP for AUTH to a smarthost.
.SH SETTINGS
Every key with its default, as this build's posternd and modules declare
them.
"""

TAIL = r"""
.SH FILES
.TP
.I /etc/postern/postern.conf
the main file.
.TP
.I /etc/postern/conf.d/
the modules' files and local changes (\fB90\-local.conf\fP).
.TP
.I /etc/postern/profiles/
the \fBgateway\fP, \fBaccess\fP and \fBfull\fP module lists.
.SH SEE ALSO
.BR posternd (8),
.BR posternctl (8)
"""


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: confman.py POSTERND MODULE.so...")
    print(HEAD + page(schema(sys.argv[1], sys.argv[2:])) + TAIL, end="")


if __name__ == "__main__":
    main()
