/*
 * postern/postern.h - everything a module needs, in one include.
 *
 * The SDK is header-only: a module includes this (or the parts it needs),
 * defines its descriptor with POSTERN_MODULE() and calls the host only
 * through the `struct postern_host` table it receives in init.  See
 * sdk/README.md for a walk-through and sdk/examples/ for a module that
 * builds out of tree with `pkg-config --cflags postern-sdk`.
 */
#ifndef POSTERN_POSTERN_H
#define POSTERN_POSTERN_H

#include <postern/types.h>
#include <postern/module.h>
#include <postern/config.h>
#include <postern/conn.h>
#include <postern/listen.h>
#include <postern/session.h>
#include <postern/stream.h>
#include <postern/hook.h>
#include <postern/host.h>
#include <postern/sasl.h>
#include <postern/auth.h>
#include <postern/storage.h>
#include <postern/urlauth.h>
#include <postern/mime.h>
#include <postern/dns.h>
#include <postern/relay.h>
#include <postern/smtp.h>
#include <postern/metrics.h>

#endif /* POSTERN_POSTERN_H */
