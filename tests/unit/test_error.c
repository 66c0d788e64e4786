/*
 * Unit tests for error.h: typed errors with a one-line lowercase detail,
 * errno mapping (disk full, permission, missing file), names and which
 * codes are worth a retry.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "base/error.h"

Test(error, fail_records_code_and_message)
{
	wal_error e;

	wal_error_clear(&e);
	cr_assert_eq(e.code, WAL_OK);
	cr_assert_str_eq(e.msg, "");
	cr_assert_eq(wal_fail(&e, WAL_ENOTWAL, "%s: not a wal file (%d bytes)",
			      "000000010000000000000001", 12),
		     WAL_ENOTWAL);
	cr_assert_eq(e.code, WAL_ENOTWAL);
	cr_assert_str_eq(e.msg, "000000010000000000000001: not a wal file (12 bytes)");
	wal_error_clear(&e);
	cr_assert_eq(e.code, WAL_OK);
	cr_assert_str_eq(e.msg, "");
}

Test(error, fail_with_null_error)
{
	cr_assert_eq(wal_fail(NULL, WAL_EIO, "x %d", 1), WAL_EIO);
	cr_assert_eq(wal_fail_errno(NULL, WAL_OK, ENOSPC, "x"), WAL_ENOSPC);
}

Test(error, long_message_is_truncated_safely)
{
	wal_error e;
	char big[4000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(wal_fail(&e, WAL_EIO, "%s", big), WAL_EIO);
	cr_assert_lt(strlen(e.msg), sizeof(e.msg));
	cr_assert_gt(strlen(e.msg), 100);
	cr_assert_eq(wal_fail_errno(&e, WAL_OK, EIO, "%s", big), WAL_EIO);
	cr_assert_lt(strlen(e.msg), sizeof(e.msg));
}

Test(error, fail_errno_appends_lowercase_cause)
{
	wal_error e;

	cr_assert_eq(wal_fail_errno(&e, WAL_OK, ENOENT, "open %s", "/x/y"), WAL_ENOENT);
	cr_assert_eq(e.code, WAL_ENOENT);
	cr_assert_str_eq(e.msg, "open /x/y: no such file or directory");

	cr_assert_eq(wal_fail_errno(&e, WAL_OK, ENOSPC, "write %s", "f"), WAL_ENOSPC);
	cr_assert_str_eq(e.msg, "write f: no space left on device");

	/* an explicit code wins over the errno's */
	cr_assert_eq(wal_fail_errno(&e, WAL_ECORRUPT, ENOENT, "object"), WAL_ECORRUPT);
	cr_assert_eq(e.code, WAL_ECORRUPT);
	cr_assert_str_eq(e.msg, "object: no such file or directory");

	/* whatever the errno, the cause is lowercase */
	int errs[] = { EACCES, EPERM, EIO, EEXIST, ENOMEM, EDQUOT, EROFS, ETIMEDOUT, ECONNREFUSED };
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		wal_fail_errno(&e, WAL_OK, errs[i], "obj");
		cr_assert_eq(strncmp(e.msg, "obj: ", 5), 0, "%s", e.msg);
		for (const char *p = e.msg; *p; p++)
			cr_assert(!isupper((unsigned char)*p), "uppercase in \"%s\"", e.msg);
		cr_assert_null(strchr(e.msg, '\n'), "newline in \"%s\"", e.msg);
	}
}

Test(error, errno_mapping)
{
	cr_assert_eq(wal_err_from_errno(ENOENT), WAL_ENOENT);
	cr_assert_eq(wal_err_from_errno(EEXIST), WAL_EEXIST);
	cr_assert_eq(wal_err_from_errno(ENOSPC), WAL_ENOSPC);
	cr_assert_eq(wal_err_from_errno(EDQUOT), WAL_ENOSPC, "quota full is disk full");
	cr_assert_eq(wal_err_from_errno(EACCES), WAL_EPERM);
	cr_assert_eq(wal_err_from_errno(EPERM), WAL_EPERM);
	cr_assert_eq(wal_err_from_errno(ENOMEM), WAL_ENOMEM);
	cr_assert_eq(wal_err_from_errno(EIO), WAL_EIO);
	cr_assert_eq(wal_err_from_errno(ETIMEDOUT), WAL_ETIMEOUT);
	cr_assert_eq(wal_err_from_errno(ECONNREFUSED), WAL_ENET);
	cr_assert_eq(wal_err_from_errno(ECONNRESET), WAL_ENET);
	cr_assert_eq(wal_err_from_errno(EXDEV), WAL_EIO, "nothing fits: WAL_EIO");
	cr_assert_eq(wal_err_from_errno(12345), WAL_EIO);
}

Test(error, names)
{
	cr_assert_str_eq(wal_err_name(WAL_ENOENT), "ENOENT");
	cr_assert_str_eq(wal_err_name(WAL_EEXIST), "EEXIST");
	cr_assert_str_eq(wal_err_name(WAL_ECORRUPT), "ECORRUPT");
	cr_assert_str_eq(wal_err_name(WAL_ENOSPC), "ENOSPC");
	for (int a = 0; a < WAL_ERR_COUNT; a++) {
		const char *na = wal_err_name((wal_err)a);
		cr_assert_not_null(na, "code %d has no name", a);
		cr_assert(na[0], "code %d has an empty name", a);
		for (int b = 0; b < a; b++)
			cr_assert_str_neq(na, wal_err_name((wal_err)b),
					  "codes %d and %d share a name", a, b);
	}
}

Test(error, transient)
{
	cr_assert(wal_err_transient(WAL_ENET));
	cr_assert(wal_err_transient(WAL_ETIMEOUT));
	wal_err permanent[] = { WAL_OK,		  WAL_ENOENT,	 WAL_EEXIST,  WAL_EEXIST_DIFFERENT,
				WAL_EINVAL,	  WAL_ECONFIG,	 WAL_ENOTWAL, WAL_EFOREIGN,
				WAL_ECORRUPT,	  WAL_EPERM,	 WAL_EAUTH,   WAL_EHOSTKEY,
				WAL_EUNSUPPORTED, WAL_EAMBIGUOUS };
	for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
		cr_assert_not(wal_err_transient(permanent[i]), "%s must not be retried",
			      wal_err_name(permanent[i]));
}
