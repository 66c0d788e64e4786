/*
 * libFuzzer target: the configuration file parser (wal_config_read_file on
 * a memfd holding the input), then every line again through
 * wal_config_set_arg as --set gives it.  Errors are expected; crashes,
 * leaks and reads past the input are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64];
	wal_config c;
	wal_error e;

	if (fd < 0) {
		fd = memfd_create("walarchive-fuzz.conf", 0);
		if (fd < 0)
			abort();
		fchmod(fd, 0600);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	wal_config_init(&c);
	if (wal_config_read_file(&c, path, &e) != WAL_OK && e.msg[0] == '\0')
		abort(); /* every failure carries a message */
	wal_config_free(&c);

	/* each line as a --set argument */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	wal_config_init(&c);
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		(void)wal_config_set_arg(&c, line, &e);
	wal_config_free(&c);
	free(text);
	return 0;
}
