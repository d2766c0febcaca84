/*
 * service_use.c - looks up "test.svc" (published by service_pub, declared
 * in `depends` so it initialises first) with minimum minor 1, checks the
 * table's size before using a member, calls it and logs the result.  It
 * then asks for minor 3, which the publisher's 1.2 cannot satisfy, and
 * logs that it got NULL.
 */
#include <postern/postern.h>

/* The part of service_pub's table this module knows (1.1: add only). */
struct test_svc {
	size_t size;
	int (*add)(int a, int b);
};

static const char *const su_deps[] = { "service_pub", NULL };
static const struct postern_host *su_host;

static int
service_use_init(const struct postern_host *host, postern_module_t *self)
{
	const struct test_svc *svc;

	su_host = host;
	svc = host->service_lookup(self, "test.svc", 1, 1);
	if (svc == NULL || svc->size < offsetof(struct test_svc, add) +
	                                   sizeof(svc->add)) {
		host->log(self, POSTERN_LOG_ERROR,
		          "service_use: test.svc 1.1 not available");
		return -1;
	}
	host->log(self, POSTERN_LOG_INFO, "service_use: add(2, 3) = %d",
	          svc->add(2, 3));
	svc = host->service_lookup(self, "test.svc", 1, 3);
	host->log(self, POSTERN_LOG_INFO, "service_use: test.svc 1.3 is %s",
	          svc == NULL ? "NULL" : "available");
	return 0;
}

static void
service_use_fini(postern_module_t *self)
{
	su_host->log(self, POSTERN_LOG_INFO, "service_use: fini");
}

POSTERN_MODULE(.name = "service_use", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .depends = su_deps,
               .init = service_use_init, .fini = service_use_fini);
