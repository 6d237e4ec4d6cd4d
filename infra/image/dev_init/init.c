/*
 * trustdial DEV/TEST init: NOT AWS's Nitro Enclaves init. It stands in for it in the dev blob set
 * (infra/image/dev_blobs.py) so that an EIF can be booted under qemu, where AWS's init cannot run
 * (it needs vsock for its heartbeat). It follows the Nitro ramdisk layout:
 *
 *   bootstrap ramdisk: /init (this program), /nsm.ko (here: a NIC driver module instead of the NSM driver)
 *   customer ramdisk:  /rootfs/... (the image), /cmd (one argument per line), /env (one NAME=VALUE per line)
 *
 * It mounts /dev, loads /nsm.ko, brings up lo and eth0 (qemu user networking: 10.0.2.15/24, gateway
 * 10.0.2.2), mounts proc, sys, dev, dev/pts, dev/shm, run and tmp inside /rootfs, reads /cmd and /env,
 * chroots into /rootfs and execs the command with exactly that environment. Any failure powers the
 * guest off (qemu -no-reboot then exits), printing why on the console.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 256
#define MAX_FILE (64 * 1024)

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("trustdial-dev-init: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *what) {
    say("FATAL: %s: %s", what, strerror(errno));
    sync();
    reboot(RB_POWER_OFF);
    _exit(1);
}

static void mount_or_die(const char *source, const char *target, const char *type, unsigned long flags,
                         const char *data) {
    mkdir(target, 0755);
    if (mount(source, target, type, flags, data) != 0 && errno != EBUSY) {
        say("mount %s on %s", type, target);
        die("mount");
    }
}

static int read_lines(const char *path, char **items, char *buffer) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    ssize_t size = read(fd, buffer, MAX_FILE - 1);
    if (size < 0) die(path);
    close(fd);
    buffer[size] = '\0';
    int count = 0;
    char *line = buffer;
    while (*line && count < MAX_ITEMS - 1) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        items[count++] = line;
        if (!end) break;
        line = end + 1;
    }
    items[count] = NULL;
    return count;
}

static void set_address(int sock, const char *name, unsigned long request, const char *address) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, address, &sin->sin_addr);
    if (ioctl(sock, request, &ifr) != 0) die(name);
}

static int bring_up(int sock, const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

static void configure_network(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) die("socket");
    if (bring_up(sock, "lo") != 0) die("lo");
    int tries = 0;
    while (bring_up(sock, "eth0") != 0) {
        if (++tries > 100) die("eth0 did not appear after loading /nsm.ko");
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    set_address(sock, "eth0", SIOCSIFADDR, "10.0.2.15");
    set_address(sock, "eth0", SIOCSIFNETMASK, "255.255.255.0");
    struct rtentry route;
    memset(&route, 0, sizeof route);
    ((struct sockaddr_in *)&route.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&route.rt_genmask)->sin_family = AF_INET;
    struct sockaddr_in *gateway = (struct sockaddr_in *)&route.rt_gateway;
    gateway->sin_family = AF_INET;
    inet_pton(AF_INET, "10.0.2.2", &gateway->sin_addr);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(sock, SIOCADDRT, &route) != 0 && errno != EEXIST) die("default route");
    close(sock);
    say("eth0 10.0.2.15/24 up");
}

int main(void) {
    static char cmd_buffer[MAX_FILE], env_buffer[MAX_FILE];
    char *argv[MAX_ITEMS], *envp[MAX_ITEMS];

    mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    int console = open("/dev/console", O_RDWR);
    if (console >= 0) {
        dup2(console, 0);
        dup2(console, 1);
        dup2(console, 2);
        if (console > 2) close(console);
    }
    say("started (DEV/TEST init, not AWS's)");

    int module = open("/nsm.ko", O_RDONLY | O_CLOEXEC);
    if (module < 0) die("/nsm.ko");
    if (syscall(SYS_finit_module, module, "", 0) != 0 && errno != EEXIST) die("finit_module /nsm.ko");
    close(module);
    say("loaded /nsm.ko");
    configure_network();

    mount_or_die("proc", "/rootfs/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_die("sysfs", "/rootfs/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_die("devtmpfs", "/rootfs/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    mount_or_die("devpts", "/rootfs/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666");
    mount_or_die("tmpfs", "/rootfs/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount_or_die("tmpfs", "/rootfs/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    mount_or_die("tmpfs", "/rootfs/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");

    int argc = read_lines("/cmd", argv, cmd_buffer);
    read_lines("/env", envp, env_buffer);
    if (argc == 0) {
        errno = EINVAL;
        die("/cmd is empty");
    }
    if (chroot("/rootfs") != 0) die("chroot /rootfs");
    if (chdir("/") != 0) die("chdir /");
    if (clearenv() != 0) die("clearenv");
    for (int i = 0; envp[i]; i++)
        if (envp[i][0] && putenv(envp[i]) != 0) die("putenv");
    say("exec %s (%d arguments)", argv[0], argc);
    execvp(argv[0], argv);
    die(argv[0]);
    return 1;
}
