/*
 * service_pub.c - publishes the service "test.svc" version 1.2: a table
 * that starts with its size, as every table crossing the ABI does.
 * service_use.c looks it up.  The struct is repeated there because
 * modules share nothing but the SDK headers.
 */
#include <postern/postern.h>

struct test_svc {
	size_t size;
	int (*add)(int a, int b);
	const char *(*name)(void);
};

static const struct postern_host *sp_host;

static int
sp_add(int a, int b)
{
	return a + b;
}

static const char *
sp_name(void)
{
	return "service_pub";
}

static const struct test_svc sp_table = {
	.size = sizeof(struct test_svc),
	.add = sp_add,
	.name = sp_name,
};

static int
service_pub_init(const struct postern_host *host, postern_module_t *self)
{
	sp_host = host;
	if (host->service_publish(self, "test.svc", 1, 2, &sp_table) != 0)
		return -1;
	host->log(self, POSTERN_LOG_INFO,
	          "service_pub: published test.svc 1.2");
	return 0;
}

static void
service_pub_fini(postern_module_t *self)
{
	sp_host->log(self, POSTERN_LOG_INFO, "service_pub: fini");
}

POSTERN_MODULE(.name = "service_pub", .version = "1.0",
               .kind = POSTERN_KIND_OTHER, .init = service_pub_init,
               .fini = service_pub_fini);
