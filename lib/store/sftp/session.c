/*
 * The SFTP store's session: one SSH connection per store handle, over a TCP
 * connection with a deadline; the server's host key is always checked
 * against a known_hosts file (known_hosts.c), never learned; public key
 * authentication from the agent, a key file or the default identities.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/sftp/known_hosts.h"
#include "store/sftp/sftp.h"

/* libssh2 I/O through the fault seam, so tests can break the link at will. */
static LIBSSH2_SEND_FUNC(seam_send)
{
	(void)abstract;
	int injected = wal_sys_fault(WAL_SYS_NET_SEND);
	if (injected)
		return -injected;
	ssize_t n = send(socket, buffer, length, flags | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

static LIBSSH2_RECV_FUNC(seam_recv)
{
	(void)abstract;
	int injected = wal_sys_fault(WAL_SYS_NET_RECV);
	if (injected)
		return -injected;
	ssize_t n = recv(socket, buffer, length, flags);
	return n < 0 ? -errno : n;
}

/* Copies a library's message lowercased, as walarchive's messages are. */
static const char *lower_copy(const char *text, char *out, size_t cap)
{
	snprintf(out, cap, "%s", text);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* libssh2's last error message, lowercased. */
static const char *ssh_message(sftp_store *s, char *out, size_t cap)
{
	char *msg = NULL;
	if (s->session)
		libssh2_session_last_error(s->session, &msg, NULL, 0);
	return lower_copy(msg && *msg ? msg : "unknown libssh2 error", out, cap);
}

/* Tears the connection down; a broken one is not asked to say goodbye. */
void wal_sftp_disconnect(sftp_store *s, int broken)
{
	if (broken && s->sock >= 0)
		shutdown(s->sock, SHUT_RDWR);
	if (s->sftp)
		libssh2_sftp_shutdown(s->sftp);
	s->sftp = NULL;
	if (s->session) {
		if (!broken)
			libssh2_session_disconnect(s->session, "walarchive done");
		libssh2_session_free(s->session);
	}
	s->session = NULL;
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

/* TCP connect with a deadline (non-blocking connect and poll). */
static wal_err tcp_connect(sftp_store *s, wal_error *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", s->port);
	int gai = getaddrinfo(s->host, port_text, &hints, &res);
	if (gai != 0) {
		char why[128];
		return wal_fail(e, gai == EAI_AGAIN ? WAL_ENET : WAL_ECONFIG,
				"%s: cannot resolve host %s: %s", s->where, s->host,
				lower_copy(gai_strerror(gai), why, sizeof(why)));
	}
	wal_err rc = WAL_ENET;
	int last_errno = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			last_errno = errno;
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int ready;
		do
			ready = poll(&pfd, 1, s->timeout * 1000);
		while (ready < 0 && errno == EINTR);
		if (ready == 0) {
			close(fd);
			freeaddrinfo(res);
			return wal_fail(e, WAL_ETIMEOUT, "%s: connect timed out after %d s",
					s->where, s->timeout);
		}
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			last_errno = soerr;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s->sock = fd;
		rc = WAL_OK;
		break;
	}
	freeaddrinfo(res);
	if (rc != WAL_OK)
		return wal_fail_errno(e, last_errno == ETIMEDOUT ? WAL_ETIMEOUT : WAL_ENET,
				      last_errno, "%s: cannot connect", s->where);
	return WAL_OK;
}

/* Reads a whole small file into a NUL-terminated heap string. */
static char *slurp(const char *path, int *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		*err = errno;
		return NULL;
	}
	size_t cap = 8192, len = 0;
	char *text = malloc(cap);
	while (text) {
		if (len + 4096 + 1 > cap) {
			char *bigger = realloc(text, cap *= 2);
			if (!bigger) {
				free(text);
				text = NULL;
				break;
			}
			text = bigger;
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	*err = text ? (ferror(f) ? EIO : 0) : ENOMEM;
	fclose(f);
	if (text && *err) {
		free(text);
		return NULL;
	}
	if (text)
		text[len] = '\0';
	return text;
}

/* Verifies the server's host key against known_hosts: WAL_EHOSTKEY unless it matches. */
static wal_err check_host_key(sftp_store *s, const char *kh_text, int kh_errno, wal_error *e)
{
	size_t len = 0;
	int type = 0;
	const char *blob = libssh2_session_hostkey(s->session, &len, &type);
	if (!blob)
		return wal_fail(e, WAL_ENET, "%s: server sent no host key", s->where);
	char fp[80], key_type[64], name[300];
	wal_ssh_key_fingerprint((const unsigned char *)blob, len, fp, sizeof(fp));
	wal_ssh_key_type((const unsigned char *)blob, len, key_type, sizeof(key_type));
	wal_known_hosts_name(s->host, s->port, name, sizeof(name));
	if (!kh_text)
		return wal_fail_errno(e, WAL_EHOSTKEY, kh_errno,
				      "%s: cannot verify host key %s %s: known_hosts file %s",
				      s->where, key_type, fp, s->known_hosts);
	int line = 0;
	switch (wal_known_hosts_check(kh_text, s->host, s->port, (const unsigned char *)blob, len,
				      &line)) {
	case WAL_KH_MATCH:
		return WAL_OK;
	case WAL_KH_REVOKED:
		return wal_fail(e, WAL_EHOSTKEY, "%s: host key %s %s is revoked in %s line %d",
				s->where, key_type, fp, s->known_hosts, line);
	case WAL_KH_MISMATCH:
		return wal_fail(e, WAL_EHOSTKEY,
				"%s: host key changed: server offered %s %s, which does not match "
				"%s line %d; "
				"possible man-in-the-middle attack, or the server was reinstalled",
				s->where, key_type, fp, s->known_hosts, line);
	default:
		return wal_fail(
			e, WAL_EHOSTKEY,
			"%s: unknown host key: %s has no %s key for %s; server offered %s %s; "
			"check the fingerprint and add the key (ssh-keyscan)",
			s->where, s->known_hosts, key_type, name, key_type, fp);
	}
}

/* Reads the first line of the passphrase file. */
static wal_err read_passphrase(sftp_store *s, char **out, wal_error *e)
{
	*out = NULL;
	if (!s->passphrase_file)
		return WAL_OK;
	int err = 0;
	char *text = slurp(s->passphrase_file, &err);
	if (!text)
		return wal_fail_errno(e, WAL_ECONFIG, err, "ssh_key_passphrase_file %s",
				      s->passphrase_file);
	text[strcspn(text, "\r\n")] = '\0';
	*out = text;
	return WAL_OK;
}

static void append(char *buf, size_t cap, const char *text)
{
	size_t used = strlen(buf);
	snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", text);
}

/* Whether a libssh2 error is the link's fault (worth a new connection). */
static int ssh_transient(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_KEX_FAILURE:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_BAD_SOCKET:
	case LIBSSH2_ERROR_EAGAIN:
		return 1;
	default:
		return 0;
	}
}

/* A libssh2 failure that is not an SFTP status (link, timeout, memory),
 * during what on remote ("" for the session itself). */
wal_err wal_sftp_ssh_fail(sftp_store *s, int rc, const char *remote, const char *what, wal_error *e)
{
	char msg[256];
	ssh_message(s, msg, sizeof(msg));
	if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT)
		return wal_fail(e, WAL_ETIMEOUT, "%s%s: %s: timed out after %d s", s->where, remote,
				what, s->timeout);
	if (rc == LIBSSH2_ERROR_ALLOC)
		return wal_fail(e, WAL_ENOMEM, "%s%s: %s: out of memory", s->where, remote, what);
	if (ssh_transient(rc))
		return wal_fail(e, WAL_ENET, "%s%s: %s: connection lost (%s)", s->where, remote,
				what, msg);
	return wal_fail(e, WAL_ENET, "%s%s: %s: %s", s->where, remote, what, msg);
}

static wal_err ssh_fail(sftp_store *s, int rc, const char *what, wal_error *e)
{
	return wal_sftp_ssh_fail(s, rc, "", what, e);
}

/* Tries the agent's identities; returns 1 if one was accepted. */
static int auth_agent(sftp_store *s, char *tried, size_t cap, int *net_rc)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	int ok = 0, count = 0;
	if (!agent) {
		append(tried, cap, "ssh-agent (cannot start)");
		return 0;
	}
	if (libssh2_agent_connect(agent) != 0) {
		append(tried, cap,
		       getenv("SSH_AUTH_SOCK") ? "ssh-agent (cannot connect to SSH_AUTH_SOCK)"
					       : "ssh-agent (SSH_AUTH_SOCK is not set)");
		libssh2_agent_free(agent);
		return 0;
	}
	if (libssh2_agent_list_identities(agent) == 0) {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (!ok && libssh2_agent_get_identity(agent, &id, prev) == 0) {
			count++;
			int rc = libssh2_agent_userauth(agent, s->user, id);
			if (rc == 0)
				ok = 1;
			else if (ssh_transient(rc)) {
				*net_rc = rc;
				break;
			}
			prev = id;
		}
	}
	char note[64];
	snprintf(note, sizeof(note), "ssh-agent (%d key%s)", count, count == 1 ? "" : "s");
	append(tried, cap, note);
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return ok;
}

/* Tries one private key file; 1 if accepted, 0 if refused, -1 (and e) if unusable. */
static int auth_key_file(sftp_store *s, const char *path, const char *passphrase, char *tried,
			 size_t cap, int *net_rc, wal_error *e)
{
	int rc = libssh2_userauth_publickey_fromfile_ex(s->session, s->user,
							(unsigned int)strlen(s->user), NULL, path,
							passphrase);
	char note[600];
	if (rc == 0)
		return 1;
	if (ssh_transient(rc)) {
		*net_rc = rc;
		return 0;
	}
	if (rc == LIBSSH2_ERROR_FILE) {
		char msg[256];
		ssh_message(s, msg, sizeof(msg));
		wal_fail(e, WAL_EAUTH, "%s: cannot use private key %s: %s (%s)", s->where, path,
			 passphrase ? "wrong passphrase or unsupported key format"
				    : "unsupported key format, or it needs a passphrase "
				      "(ssh_key_passphrase_file)",
			 msg);
		return -1;
	}
	snprintf(note, sizeof(note), "publickey %s", path);
	append(tried, cap, note);
	return 0;
}

/* Authenticates as s->user: agent (if asked), then the key file or the default identities. */
static wal_err authenticate(sftp_store *s, wal_error *e)
{
	char tried[1024] = "";
	int net_rc = 0;
	char *methods = libssh2_userauth_list(s->session, s->user, (unsigned int)strlen(s->user));
	if (!methods) {
		if (libssh2_userauth_authenticated(s->session))
			return WAL_OK;
		int rc = libssh2_session_last_errno(s->session);
		return ssh_fail(s, rc, "authentication", e);
	}
	char server_methods[256];
	snprintf(server_methods, sizeof(server_methods), "%s", methods);
	if (!strstr(server_methods, "publickey"))
		return wal_fail(e, WAL_EAUTH,
				"%s: server does not accept public key authentication for user %s "
				"(it accepts: %s)",
				s->where, s->user, server_methods);

	if (s->use_agent && auth_agent(s, tried, sizeof(tried), &net_rc))
		return WAL_OK;
	if (net_rc)
		return ssh_fail(s, net_rc, "authentication", e);

	char *passphrase = NULL;
	wal_err err = read_passphrase(s, &passphrase, e);
	if (err != WAL_OK)
		return err;
	int result = 0;
	if (s->key_file) {
		result =
			auth_key_file(s, s->key_file, passphrase, tried, sizeof(tried), &net_rc, e);
	} else if (!s->use_agent) {
		/* as ssh does without -i: the user's default identities */
		static const char *const defaults[] = { "id_ed25519", "id_ecdsa", "id_rsa" };
		struct passwd *pw = getpwuid(geteuid());
		for (size_t i = 0;
		     pw && result == 0 && !net_rc && i < sizeof(defaults) / sizeof(defaults[0]);
		     i++) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/.ssh/%s", pw->pw_dir, defaults[i]);
			if (access(path, R_OK) == 0)
				result = auth_key_file(s, path, passphrase, tried, sizeof(tried),
						       &net_rc, e);
		}
		if (!tried[0] && result == 0)
			append(tried, sizeof(tried), "no key: set ssh_key or ssh_agent");
	}
	if (passphrase) {
		explicit_bzero(passphrase, strlen(passphrase));
		free(passphrase);
	}
	if (result == 1)
		return WAL_OK;
	if (result < 0)
		return e->code;
	if (net_rc)
		return ssh_fail(s, net_rc, "authentication", e);
	return wal_fail(e, WAL_EAUTH,
			"%s: authentication refused for user %s (tried: %s; server accepts: %s)",
			s->where, s->user, tried, server_methods);
}

/* Connects, verifies the host, authenticates and starts SFTP. */
wal_err wal_sftp_connect(sftp_store *s, wal_error *e)
{
	int kh_errno = 0;
	char *kh_text = slurp(s->known_hosts, &kh_errno);
	wal_err rc = tcp_connect(s, e);
	if (rc != WAL_OK)
		goto out;
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (!s->session) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: cannot create ssh session", s->where);
		goto out;
	}
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_SEND, (void *)seam_send);
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV, (void *)seam_recv);
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, (long)s->timeout * 1000);
	if (kh_text) {
		char methods[256];
		wal_known_hosts_methods(kh_text, s->host, s->port, methods, sizeof(methods));
		if (methods[0])
			libssh2_session_method_pref(s->session, LIBSSH2_METHOD_HOSTKEY, methods);
	}
	int ssh_rc = libssh2_session_handshake(s->session, s->sock);
	if (ssh_rc) {
		rc = ssh_fail(s, ssh_rc, "ssh handshake", e);
		goto out;
	}
	rc = check_host_key(s, kh_text, kh_errno, e);
	if (rc != WAL_OK)
		goto out;
	rc = authenticate(s, e);
	if (rc != WAL_OK)
		goto out;
	s->sftp = libssh2_sftp_init(s->session);
	if (!s->sftp) {
		int err = libssh2_session_last_errno(s->session);
		rc = ssh_transient(err)
			     ? ssh_fail(s, err, "starting sftp", e)
			     : wal_fail(e, WAL_EUNSUPPORTED,
					"%s: the server offers no sftp subsystem", s->where);
		goto out;
	}
out:
	free(kh_text);
	if (rc != WAL_OK)
		wal_sftp_disconnect(s, 1);
	return rc;
}
