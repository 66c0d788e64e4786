/*
 * Unit tests of known_hosts matching (lib/store/sftp/known_hosts.c), which
 * decides the SFTP store's host-key check: host key fingerprints in
 * OpenSSH's format, plain, [host]:port, hashed, wildcard and negated names,
 * @revoked.  The driver's network paths are covered by
 * tests/integration/30-sftp.sh against a real sshd.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "store/sftp/known_hosts.h"

enum {
	KH_MATCH = WAL_KH_MATCH,
	KH_MISMATCH = WAL_KH_MISMATCH,
	KH_NOTFOUND = WAL_KH_NOTFOUND,
	KH_REVOKED = WAL_KH_REVOKED
};

/* Keys made with ssh-keygen; fingerprints as `ssh-keygen -lf` printed them. */
#define K1 "AAAAC3NzaC1lZDI1NTE5AAAAIA13vmWTp6E4gQl7Gj+nYBJmVjC9HzX4OcPPPOzWR+pl"
#define K1_FP "SHA256:nlzTHcUbqSOp7ZyyEzxltnzgBe5qqWOj0b3bmYe0jwQ"
#define K2 "AAAAC3NzaC1lZDI1NTE5AAAAIMD5Q5gZTB7iT20OC27OlEONHJxduP2kPXFw/W7BHzNP"
#define K3                                                                                         \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBN1KbgvBefoKJfl4twxgTPn6nupKObr4H8ZP" \
	"7wj3+pKt3+/uzWHfn7Gu2rCwJOU7NimAD/mvJdkL2PP1Oe55P5A="
#define K3_FP "SHA256:/Hy3lofaChOQAI9cmxTRLbdJvJOdhDLyIAC5c2RgAxE"
/* `ssh-keygen -H` of "[db.example.com]:2222 ssh-ed25519 K1" */
#define K1_HASHED_2222 "|1|N2YhCGWMKIiBJ0zrfEWBnXw43CY=|y1EKOmcIJ1YBC66TUJ8JHBo5JCk="

typedef struct key {
	unsigned char blob[512];
	size_t len;
} key;

static key decode(const char *b64)
{
	key k;
	k.len = wal_ssh_base64_decode(b64, strlen(b64), k.blob, sizeof(k.blob));
	cr_assert(k.len > 0, "fixture key decodes");
	return k;
}

static int check(const char *text, const char *host, int port, const char *b64, int *line)
{
	key k = decode(b64);
	return wal_known_hosts_check(text, host, port, k.blob, k.len, line);
}

Test(sftp_fingerprint, matches_ssh_keygen)
{
	char fp[80];
	key k = decode(K1);
	wal_ssh_key_fingerprint(k.blob, k.len, fp, sizeof(fp));
	cr_assert_str_eq(fp, K1_FP);
	k = decode(K3);
	wal_ssh_key_fingerprint(k.blob, k.len, fp, sizeof(fp));
	cr_assert_str_eq(fp, K3_FP);
}

Test(sftp_base64, decodes_with_and_without_padding)
{
	unsigned char out[16];
	cr_assert_eq(wal_ssh_base64_decode("aGk=", 4, out, sizeof(out)), 2);
	cr_assert_eq(memcmp(out, "hi", 2), 0);
	cr_assert_eq(wal_ssh_base64_decode("aGk", 3, out, sizeof(out)), 2);
	cr_assert_eq(wal_ssh_base64_decode("a*k=", 4, out, sizeof(out)), 0,
		     "bad characters are refused");
	cr_assert_eq(wal_ssh_base64_decode("aGVsbG8gd29ybGQ=", 16, out, 4), 0,
		     "too long for the buffer");
}

Test(sftp_known_hosts, plain_host_on_port_22)
{
	const char *kh = "# comment\n\nbackup.example.com ssh-ed25519 " K1 " root@backup\n";
	int line = -1;
	cr_assert_eq(check(kh, "backup.example.com", 22, K1, &line), KH_MATCH);
	cr_assert_eq(line, 3);
	cr_assert_eq(check(kh, "BACKUP.example.com", 22, K1, NULL), KH_MATCH,
		     "host names are case-insensitive");
	cr_assert_eq(check(kh, "backup.example.com", 22, K2, &line), KH_MISMATCH, "changed key");
	cr_assert_eq(line, 3);
	cr_assert_eq(check(kh, "other.example.com", 22, K1, NULL), KH_NOTFOUND);
	/* as OpenSSH: an entry for port 22 does not vouch for another port */
	cr_assert_eq(check(kh, "backup.example.com", 2222, K1, NULL), KH_NOTFOUND);
}

Test(sftp_known_hosts, bracketed_host_and_port)
{
	const char *kh = "[127.0.0.1]:2222 ssh-ed25519 " K1 "\n";
	cr_assert_eq(check(kh, "127.0.0.1", 2222, K1, NULL), KH_MATCH);
	cr_assert_eq(check(kh, "127.0.0.1", 2223, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "127.0.0.1", 22, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "127.0.0.1", 2222, K2, NULL), KH_MISMATCH);
}

Test(sftp_known_hosts, hashed_entries)
{
	const char *kh = K1_HASHED_2222 " ssh-ed25519 " K1 "\n";
	cr_assert_eq(check(kh, "db.example.com", 2222, K1, NULL), KH_MATCH);
	cr_assert_eq(check(kh, "db.example.com", 2222, K2, NULL), KH_MISMATCH);
	cr_assert_eq(check(kh, "db.example.com", 22, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "db2.example.com", 2222, K1, NULL), KH_NOTFOUND);
}

Test(sftp_known_hosts, patterns_lists_and_negation)
{
	const char *kh = "alpha,*.backup.example.com,!bad.backup.example.com ssh-ed25519 " K1 "\n"
			 "db?.example.com ssh-ed25519 " K1 "\r\n";
	cr_assert_eq(check(kh, "alpha", 22, K1, NULL), KH_MATCH);
	cr_assert_eq(check(kh, "x.backup.example.com", 22, K1, NULL), KH_MATCH);
	cr_assert_eq(check(kh, "bad.backup.example.com", 22, K1, NULL), KH_NOTFOUND,
		     "negated pattern");
	cr_assert_eq(check(kh, "db1.example.com", 22, K1, NULL), KH_MATCH, "CRLF line end");
	cr_assert_eq(check(kh, "db12.example.com", 22, K1, NULL), KH_NOTFOUND);
}

Test(sftp_known_hosts, key_types_are_separate)
{
	/* an ecdsa entry does not make an ed25519 key "changed", only unknown */
	const char *kh = "h ecdsa-sha2-nistp256 " K3 "\n";
	cr_assert_eq(check(kh, "h", 22, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "h", 22, K3, NULL), KH_MATCH);
	/* several keys of one type: any of them matches */
	const char *two = "h ssh-ed25519 " K2 "\nh ssh-ed25519 " K1 "\n";
	cr_assert_eq(check(two, "h", 22, K1, NULL), KH_MATCH);
}

Test(sftp_known_hosts, revoked_wins)
{
	const char *kh = "h ssh-ed25519 " K1 "\n@revoked * ssh-ed25519 " K1 "\n";
	int line = 0;
	cr_assert_eq(check(kh, "h", 22, K1, &line), KH_REVOKED);
	cr_assert_eq(line, 2);
	cr_assert_eq(check(kh, "h", 22, K2, NULL), KH_MISMATCH);
	/* @cert-authority lines are skipped, not taken as host keys */
	cr_assert_eq(check("@cert-authority h ssh-ed25519 " K1 "\n", "h", 22, K1, NULL),
		     KH_NOTFOUND);
}

Test(sftp_known_hosts, garbage_is_not_a_match)
{
	cr_assert_eq(check("h ssh-ed25519 not*base64\n", "h", 22, K1, NULL), KH_MISMATCH);
	cr_assert_eq(check("h\nh ssh-ed25519\n", "h", 22, K1, NULL), KH_NOTFOUND,
		     "truncated lines");
	cr_assert_eq(check("", "h", 22, K1, NULL), KH_NOTFOUND);
}

Test(sftp_known_hosts, host_key_methods_follow_known_hosts)
{
	char methods[256];
	const char *kh = "h ssh-rsa AAAA\nh ssh-ed25519 " K1 "\nother ecdsa-sha2-nistp256 " K3 "\n"
			 "@revoked h ecdsa-sha2-nistp384 AAAA\n";
	wal_known_hosts_methods(kh, "h", 22, methods, sizeof(methods));
	cr_assert_str_eq(methods, "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa");
	wal_known_hosts_methods(kh, "nobody", 22, methods, sizeof(methods));
	cr_assert_str_eq(methods, "");
}

/* `ssh-keygen -H` of "backup.example.com ssh-ed25519 K1" (port 22) */
#define K1_HASHED_22 "|1|s4F/aYlV/jDd1ZpG7d7Dd0oOHoE=|xucatrzKqqiHIP9DIddp//gt4+k="

Test(sftp_known_hosts, hashed_entry_on_port_22_and_revoked)
{
	const char *kh = K1_HASHED_22 " ssh-ed25519 " K1 "\n";
	cr_assert_eq(check(kh, "backup.example.com", 22, K1, NULL), KH_MATCH);
	cr_assert_eq(check(kh, "backup.example.com", 2222, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "backup.example.com", 22, K2, NULL), KH_MISMATCH);
	/* a hashed name under @revoked revokes the key for that host only */
	const char *rev = "* ssh-ed25519 " K1 "\n@revoked " K1_HASHED_22 " ssh-ed25519 " K1 "\n";
	int line = 0;
	cr_assert_eq(check(rev, "backup.example.com", 22, K1, &line), KH_REVOKED);
	cr_assert_eq(line, 2);
	cr_assert_eq(check(rev, "other.example.com", 22, K1, NULL), KH_MATCH);
}

Test(sftp_known_hosts, wildcards_inside_brackets_and_last_line)
{
	/* brackets are literal, wildcards work inside them; no final newline */
	const char *kh = "# first\n   \n[10.0.0.*]:2222 ssh-ed25519 " K1;
	int line = 0;
	cr_assert_eq(check(kh, "10.0.0.7", 2222, K1, &line), KH_MATCH);
	cr_assert_eq(line, 3);
	cr_assert_eq(check(kh, "10.0.0.7", 22, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check(kh, "10.0.1.7", 2222, K1, NULL), KH_NOTFOUND);
	/* tabs separate fields as spaces do; a mismatch names the first such line */
	const char *tabs = "h\tssh-ed25519\t" K2 "\nh ssh-ed25519 " K2 "\n";
	cr_assert_eq(check(tabs, "h", 22, K1, &line), KH_MISMATCH);
	cr_assert_eq(line, 1);
}

Test(sftp_known_hosts, names_and_key_types)
{
	char name[64], type[64];
	wal_known_hosts_name("Backup.Example.COM", 22, name, sizeof(name));
	cr_assert_str_eq(name, "backup.example.com");
	wal_known_hosts_name("::1", 2222, name, sizeof(name));
	cr_assert_str_eq(name, "[::1]:2222");
	wal_known_hosts_name("h", 0, name, sizeof(name));
	cr_assert_str_eq(name, "h");
	key k = decode(K3);
	wal_ssh_key_type(k.blob, k.len, type, sizeof(type));
	cr_assert_str_eq(type, "ecdsa-sha2-nistp256");
	wal_ssh_key_type(k.blob, 3, type, sizeof(type));
	cr_assert_str_eq(type, "", "too short for a length");
	wal_ssh_key_type(k.blob, k.len, type, 8);
	cr_assert_str_eq(type, "", "does not fit");
}

Test(sftp_known_hosts, many_wildcards_answer_at_once, .timeout = 10)
{
	/* a recursive matcher takes exponential time on this (found by fuzzing) */
	char host[201];
	memset(host, 'a', 200);
	host[200] = '\0';
	const char *kh = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b ssh-ed25519 " K1 "\n"
			 "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a ssh-ed25519 " K1 "\n";
	int line = 0;
	cr_assert_eq(check(kh, host, 22, K1, &line), KH_MATCH);
	cr_assert_eq(line, 2);
	cr_assert_eq(check(kh, "ab", 22, K1, NULL), KH_NOTFOUND);
	cr_assert_eq(check("a*?b* ssh-ed25519 " K1 "\n", "AxxB", 22, K1, NULL), KH_MATCH);
	cr_assert_eq(check("a*?b* ssh-ed25519 " K1 "\n", "aB", 22, K1, NULL), KH_NOTFOUND);
}
