/*
 * service.c - the registry of named, versioned tables (see service.h).
 *
 * A handful of services per process, published once during init: a flat
 * array searched linearly is all this needs.  Versions follow the ABI's
 * rule: the same major, and a minor at least the one asked for, since a
 * table only grows at the end within a major.
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

struct service {
	char *owner;
	char *name;
	unsigned major, minor;
	const void *table;
};

static struct service *services;
static size_t nservices, capservices;

static struct service *
service_find(const char *name)
{
	size_t i;

	for (i = 0; i < nservices; i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

int
service_publish(const char *owner, const char *name, unsigned major,
                unsigned minor, const void *table)
{
	struct service *s;
	size_t size;

	if (name == NULL || *name == '\0') {
		log_error("module '%s' tried to publish a service without a "
		          "name", owner);
		return -1;
	}
	if (table == NULL) {
		log_error("module '%s' tried to publish service '%s' without "
		          "a table", owner, name);
		return -1;
	}
	/* Every table starts with its size; a zero there means the module
	 * forgot it, and users could not check what the table holds. */
	memcpy(&size, table, sizeof(size));
	if (size < sizeof(size_t)) {
		log_error("module '%s' published service '%s' with a table "
		          "that does not start with its size", owner, name);
		return -1;
	}
	if ((s = service_find(name)) != NULL) {
		log_error("module '%s' cannot publish service '%s': module "
		          "'%s' already publishes it (version %u.%u)", owner,
		          name, s->owner, s->major, s->minor);
		return -1;
	}
	if (nservices == capservices) {
		capservices = capservices ? capservices * 2 : 8;
		services = xreallocarray(services, capservices,
		                         sizeof(*services));
	}
	s = &services[nservices++];
	s->owner = xstrdup(owner);
	s->name = xstrdup(name);
	s->major = major;
	s->minor = minor;
	s->table = table;
	return 0;
}

const void *
service_lookup(const char *requester, const char *name, unsigned major,
               unsigned min_minor, int optional)
{
	const struct service *s;

	if (name == NULL)
		name = "(null)";
	if ((s = service_find(name)) == NULL) {
		if (optional)
			return NULL; /* the caller can do without: no error */
		log_error("module '%s' needs service '%s' %u.%u, which no "
		          "loaded module publishes", requester, name, major,
		          min_minor);
		return NULL;
	}
	if (s->major != major) {
		log_error("module '%s' needs service '%s' %u.%u, but module "
		          "'%s' publishes %u.%u (major differs)", requester,
		          name, major, min_minor, s->owner, s->major,
		          s->minor);
		return NULL;
	}
	if (s->minor < min_minor) {
		log_error("module '%s' needs service '%s' %u.%u or newer, but "
		          "module '%s' publishes %u.%u (minor too old)",
		          requester, name, major, min_minor, s->owner,
		          s->major, s->minor);
		return NULL;
	}
	return s->table;
}

void
service_reset(void)
{
	size_t i;

	for (i = 0; i < nservices; i++) {
		free(services[i].owner);
		free(services[i].name);
	}
	free(services);
	services = NULL;
	nservices = capservices = 0;
}
