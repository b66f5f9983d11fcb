/*
 * fake_soffice.c: a stand-in for LibreOffice's soffice.bin (tests/unit/test_render.c), run by the
 * renderer's office converter exactly as soffice.bin would be (same arguments, same confinement).
 * It proves that confinement from inside, then acts as a converter:
 *   - an input containing "HANG" makes it sleep forever: the converter must kill it at the deadline;
 *   - otherwise it checks, in order, and exits with the number of the first check that fails:
 *     1 no network socket (AF_INET and AF_INET6 refused with EACCES; AF_UNIX allowed),
 *     2 no capability in effect, none in the bounding set when started as root, no new privileges,
 *       a seccomp filter,
 *     3 no network interface but loopback (its own network namespace),
 *     4 a private /tmp (empty: the office directory's tmp/, not the machine's),
 *     5 no write outside its directory (/var/tmp refused), no read of /root (Landlock),
 *     6 the input and the output directory are where the arguments say;
 *   and when all pass writes a one-page PDF as <outdir>/<input name>.pdf and exits 0.
 * Built without sanitizers: it runs under LibreOffice's 4 GiB address-space limit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int status_has(const char *key, const char *want)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    int found = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, strlen(key)) == 0 && strcmp(line + strlen(key), want) == 0)
            found = 1;
    if (f != NULL)
        fclose(f);
    return found;
}

static int checks(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 || errno != EACCES)
        return 1;
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd >= 0 || errno != EACCES)
        return 1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return 1;
    close(fd);
    if (!status_has("CapEff:\t", "0000000000000000\n") || !status_has("NoNewPrivs:\t", "1\n") ||
        !status_has("Seccomp:\t", "2\n") || (geteuid() == 0 && !status_has("CapBnd:\t", "0000000000000000\n")))
        return 2;
    char line[256];
    int ifaces = 0, lo = 0;
    FILE *f = fopen("/proc/self/net/dev", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strchr(line, ':') != NULL) {
            ifaces++;
            lo += strstr(line, "lo:") != NULL;
        }
    if (f != NULL)
        fclose(f);
    if (f == NULL || ifaces != 1 || lo != 1)
        return 3;
    DIR *d = opendir("/tmp");
    struct dirent *e;
    int entries = 0;
    while (d != NULL && (e = readdir(d)) != NULL)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    if (d == NULL || entries != 0)
        return 4;
    fd = open("/var/tmp/coffer-fake-soffice-escape", O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        close(fd);
        unlink("/var/tmp/coffer-fake-soffice-escape");
        return 5;
    }
    if (open("/root", O_RDONLY | O_DIRECTORY) >= 0)
        return 5;
    return 0;
}

int main(int argc, char **argv)
{
    const char *outdir = NULL, *input = argc > 1 ? argv[argc - 1] : NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--outdir") == 0)
            outdir = argv[i + 1];
    char buf[4096];
    int fd = input != NULL ? open(input, O_RDONLY) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd < 0 || n < 0 || outdir == NULL)
        return 6;
    close(fd);
    buf[n] = '\0';
    if (strstr(buf, "HANG") != NULL)
        for (;;)
            sleep(3600);
    int rc = checks();
    if (rc != 0)
        return rc;
    /* A one-page PDF with a correct cross-reference table. */
    static const char *const objs[] = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    };
    char pdf[2048];
    size_t len = (size_t)snprintf(pdf, sizeof pdf, "%%PDF-1.4\n");
    size_t off[3];
    for (int i = 0; i < 3; i++) {
        off[i] = len;
        len += (size_t)snprintf(pdf + len, sizeof pdf - len, "%d 0 obj %s endobj\n", i + 1, objs[i]);
    }
    size_t xref = len;
    len += (size_t)snprintf(pdf + len, sizeof pdf - len, "xref\n0 4\n0000000000 65535 f \n");
    for (int i = 0; i < 3; i++)
        len += (size_t)snprintf(pdf + len, sizeof pdf - len, "%010zu 00000 n \n", off[i]);
    len += (size_t)snprintf(pdf + len, sizeof pdf - len, "trailer << /Size 4 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                            xref);
    const char *base = strrchr(input, '/') != NULL ? strrchr(input, '/') + 1 : input;
    const char *dot = strrchr(base, '.');
    char out[1024];
    snprintf(out, sizeof out, "%s/%.*s.pdf", outdir, (int)(dot != NULL ? dot - base : (long)strlen(base)), base);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, pdf, len) != (ssize_t)len || close(fd) != 0)
        return 6;
    return 0;
}
