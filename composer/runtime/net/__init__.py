"""Container networking: bridges, veths and addresses (network, through the rtnetlink client
rtnl), address management (ipam), the records on disk (records), the nft firewall and NAT (nft),
published ports and the userspace proxy (ports, proxy), and the host-side /etc/hosts, hostname and
resolv.conf a container gets (etcfiles).

May import spec, syscalls and errors only. Imports nothing here (monitors import net.rtnl)."""
