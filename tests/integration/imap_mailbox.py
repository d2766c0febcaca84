#!/usr/bin/env python3
"""IMAP mailboxes with imaplib and raw commands: CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST (patterns, LIST-EXTENDED, CHILDREN,
SPECIAL-USE, LIST-STATUS), LSUB, STATUS, and modified UTF-7 names.
"""
import imaplib
import re

from imaptest import finish, login, message, start_server, Raw
from testlib import Runner

R = Runner("imap_mailbox")
srv = start_server(R)


def names(data):
    """Mailbox names of LIST/LSUB replies (quoted strings)."""
    out = []
    for d in data:
        if d is None:
            continue
        mt = re.match(rb'\(([^)]*)\) "(.)" (.*)$', d)
        assert mt, d
        name = mt.group(3)
        if name.startswith(b'"'):
            name = name[1:-1]
        out.append(name.decode())
    return sorted(out)


def attrs(data, name):
    for d in data:
        mt = re.match(rb'\(([^)]*)\) "." "?([^"]*)"?$', d)
        if mt and mt.group(2).decode() == name:
            return mt.group(1).decode().split()
    raise AssertionError("%s not in %r" % (name, data))


def test_create_list_delete(R):
    m = login(srv)
    assert m.create("Work")[0] == "OK"
    assert m.create("Work/Projects/2024")[0] == "OK"   # parents too
    typ, data = m.create("Work")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0], data
    typ, data = m.create("INBOX")
    assert typ == "NO", data
    typ, data = m.list()
    assert set(["INBOX", "Work", "Work/Projects",
                "Work/Projects/2024"]) <= set(names(data)), data
    assert "\\HasChildren" in attrs(data, "Work")
    assert "\\HasNoChildren" in attrs(data, "Work/Projects/2024")
    typ, data = m.list('""', "%")
    assert "Work/Projects" not in names(data) and "Work" in names(data)
    typ, data = m.list("Work/", "%")
    assert names(data) == ["Work/Projects"], data
    typ, data = m.list('""', "*2024")
    assert names(data) == ["Work/Projects/2024"], data
    typ, data = m.list('""', "inbox")
    assert names(data) == ["INBOX"], data
    typ, data = m.list('""', '""')
    assert data[0] == b'(\\Noselect) "/" ""', data
    assert m.delete("Work/Projects/2024")[0] == "OK"
    typ, data = m.delete("Nonexistent")
    assert typ == "NO" and b"NONEXISTENT" in data[0], data
    typ, data = m.delete("INBOX")
    assert typ == "NO", data
    m.logout()


def test_rename(R):
    m = login(srv)
    m.create("Old")
    m.create("Old/Child")
    m.append("Old", None, None, message("renamed"))
    assert m.rename("Old", "New")[0] == "OK"
    typ, data = m.list('""', "*")
    n = names(data)
    assert "New" in n and "New/Child" in n and "Old" not in n, n
    typ, data = m.status("New", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0], data
    typ, data = m.rename("Nope", "Other")
    assert typ == "NO", data
    m.logout()


def test_subscribe_lsub(R):
    m = login(srv)
    m.create("Sub1")
    m.create("Sub2")
    assert m.subscribe("Sub1")[0] == "OK"
    assert m.subscribe("Gone")[0] == "OK"     # need not exist
    typ, data = m.lsub('""', "*")
    n = names(data)
    assert "Sub1" in n and "Gone" in n and "Sub2" not in n, n
    # LIST (SUBSCRIBED): \Subscribed, and \NonExistent for "Gone".
    typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')
    typ, data = m._untagged_response(typ, data, "LIST")
    assert "\\Subscribed" in attrs(data, "Sub1"), data
    assert "\\NonExistent" in attrs(data, "Gone"), data
    # RFC 5258 3.4: \NonExistent implies \Noselect, not sent with it.
    assert "\\Noselect" not in attrs(data, "Gone"), data
    assert "Sub2" not in names(data)
    # A plain LIST does not show subscribed names that do not exist.
    typ, data = m.list()
    assert "Gone" not in names(data)
    # RFC 3501 6.3.9: "%" stopping above a subscribed mailbox gives its
    # unsubscribed parent as \Noselect; "*" does not.
    m.create("Par/Kid")
    m.subscribe("Par/Kid")
    typ, data = m.lsub('""', "%")
    assert "\\Noselect" in attrs(data, "Par"), data
    typ, data = m.lsub('""', "*")
    assert "Par" not in names(data) and "Par/Kid" in names(data), data
    # RFC 5258 3.5: RECURSIVEMATCH gives Par a CHILDINFO only when its
    # subscribed child is not listed itself.
    typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)",
                                  '""', '"Par"')
    typ, data = m._untagged_response(typ, data, "LIST")
    assert len(data) == 1 and b"CHILDINFO" in data[0], data
    typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)",
                                  '""', '(Par Par/Kid)')
    typ, data = m._untagged_response(typ, data, "LIST")
    assert names(data) == ["Par/Kid"], data
    assert m.unsubscribe("Sub1")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert "Sub1" not in names(data), data
    m.logout()


def test_list_extended_status_and_special_use(R):
    m = login(srv)
    m.create("Stat")
    m.append("Stat", "(\\Seen)", None, message("st 1"))
    m.append("Stat", None, None, message("st 2"))
    typ, data = m._simple_command("LIST", '""', '"Stat"', "RETURN",
                                  "(CHILDREN STATUS (MESSAGES UNSEEN))")
    assert typ == "OK", data
    lists = m.untagged_responses.pop("LIST", [])
    statuses = m.untagged_responses.pop("STATUS", [])
    assert names(lists) == ["Stat"], lists
    assert re.search(rb"MESSAGES 2 UNSEEN 1", statuses[0]), statuses
    # CREATE-SPECIAL-USE, then LIST (SPECIAL-USE) shows only those.
    typ, data = m._simple_command("CREATE", "Sent", "(USE (\\Sent))")
    assert typ == "OK", data
    typ, data = m._simple_command("CREATE", "Bin", "(USE (\\Trash "
                                  "\\Junk))")
    assert typ == "OK", data
    typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    assert typ == "OK", data
    lists = m.untagged_responses.pop("LIST", [])
    assert names(lists) == ["Bin", "Sent"], lists
    assert "\\Sent" in attrs(lists, "Sent"), lists
    assert "\\Trash" in attrs(lists, "Bin") and \
        "\\Junk" in attrs(lists, "Bin"), lists
    typ, data = m.list('""', "Sent")
    assert "\\Sent" in attrs(data, "Sent"), data
    typ, data = m._simple_command("LIST", '""', '("Stat" "INBOX")')
    lists = m.untagged_responses.pop("LIST", [])
    assert names(lists) == ["INBOX", "Stat"], lists
    try:
        m._simple_command("LIST", "(RECURSIVEMATCH)", '""', '"*"')
        raise AssertionError("RECURSIVEMATCH alone was accepted")
    except imaplib.IMAP4.error as e:
        assert "RECURSIVEMATCH" in str(e), e
    m.logout()


def test_status(R):
    m = login(srv)
    m.create("St2")
    m.append("St2", None, None, message("a"))
    typ, data = m.status("St2", "(MESSAGES RECENT UIDNEXT UIDVALIDITY "
                                "UNSEEN HIGHESTMODSEQ SIZE)")
    assert typ == "OK", data
    for item in (b"MESSAGES 1", b"UIDNEXT 2", b"UNSEEN 1", b"UIDVALIDITY",
                 b"HIGHESTMODSEQ", b"SIZE %d" % len(message("a"))):
        assert item in data[0], (item, data)
    typ, data = m.status("NoSuch", "(MESSAGES)")
    assert typ == "NO" and b"NONEXISTENT" in data[0], data
    try:
        m._simple_command("STATUS", "St2", "(BOGUS)")
        raise AssertionError("STATUS with an unknown item")
    except imaplib.IMAP4.error as e:
        assert "unknown status item" in str(e), e
    m.logout()


def test_utf7_names(R):
    m = login(srv)
    # "Entwürfe" in modified UTF-7
    assert m.create("Entw&APw-rfe")[0] == "OK"
    typ, data = m.list('""', "Entw*")
    assert names(data) == ["Entw&APw-rfe"], data
    typ, data = m.create("Bad&name")
    assert typ == "NO", data
    # A pattern that is not modified UTF-7 names no mailbox: OK, empty.
    typ, data = m.list('""', "Entw&rfe*")
    assert typ == "OK" and data == [None], data
    typ, data = m.list('""', "(Entw&rfe Entw*)")
    assert typ == "OK" and names(data) == ["Entw&APw-rfe"], data
    m.append("Entw&APw-rfe", None, None, message("utf7"))
    typ, data = m.select("Entw&APw-rfe")
    assert typ == "OK" and data == [b"1"], data
    m.logout()
    # On disk the name is modified UTF-7 too (Maildir++ as Dovecot).
    import os
    assert os.path.isdir(os.path.join(srv.maildir("alice@example.org"),
                                      ".Entw&APw-rfe"))


def test_select_nonexistent_leaves_no_mailbox(R):
    r = Raw(srv.port("imap"))
    r.login()
    out = r.cmd("a", "SELECT INBOX")
    assert out[-1].startswith("a OK [READ-WRITE]"), out
    out = r.cmd("b", "SELECT NoSuchMailbox")
    assert out[-1].startswith("b NO [NONEXISTENT]"), out
    out = r.cmd("c", "FETCH 1 FLAGS")
    assert out[-1].startswith("c BAD"), out   # not in the selected state
    out = r.cmd("d", "EXAMINE INBOX")
    assert out[-1].startswith("d OK [READ-ONLY]"), out
    out = r.cmd("e", "SELECT INBOX")
    assert any("[CLOSED]" in l for l in out), out
    r.close()


def test_commands_in_wrong_state(R):
    r = Raw(srv.port("imap"))
    out = r.cmd("a", "SELECT INBOX")
    assert out[-1].startswith("a BAD"), out
    out = r.cmd("b", "LIST \"\" *")
    assert out[-1].startswith("b BAD"), out
    r.login()
    out = r.cmd("c", "EXPUNGE")
    assert out[-1].startswith("c BAD"), out
    out = r.cmd("d", "LOGIN a b")
    assert out[-1].startswith("d BAD"), out
    out = r.cmd("e", "UID NOOP")
    assert out[-1].startswith("e BAD"), out
    r.close()


for t in (test_create_list_delete, test_rename, test_subscribe_lsub,
          test_list_extended_status_and_special_use, test_status,
          test_utf7_names, test_select_nonexistent_leaves_no_mailbox,
          test_commands_in_wrong_state):
    R.run(t)
finish(R, srv)
