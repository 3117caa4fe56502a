// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The MidoNet tc-BPF datapath: the fast path of midonet.datapath.linux.
 *
 * Loaded by iproute2 `tc` (clsact, direct action) from this one object, two sections:
 *
 *   mn_port     tc ingress of every datapath port's interface (a VM's veth or tap)
 *   mn_tunnel   tc ingress of the host's VXLAN device (`vxlan external dstport 6677`): the packet's
 *               tunnel key (VNI, outer source) comes from bpf_skb_get_tunnel_key
 *
 * A packet is parsed into a `struct mn_key` (the fields of midonet.datapath.base.KEY_FIELDS the kernel can
 * match), then looked up in the megaflow table: for each mask slot in use (mn_masks, a bounded loop), the key
 * ANDed with the mask and tagged with the slot number is looked up in one hash map (mn_flows). A hit counts
 * (packets, bytes, last used) and runs the flow's actions; a miss goes up to the agent.
 *
 * Upcalls: the packet gets a 16-byte `struct mn_meta` in front of it (bpf_skb_change_head: in-port, reason,
 * tunnel key) and is redirected to the upcall veth; the agent reads the peer with AF_PACKET. The layouts below
 * are mirrored, byte for byte, by midonet/datapath/linux/layout.py: change both together.
 *
 * Kernel execute: a packet the agent executes with the actions of a kernel flow it installed is sent into the
 * upcall veth's peer with a 96-byte `struct mn_exec` at its end (the flow's key, the in-port, a number); mn_port on
 * the upcall veth's ingress trims it and runs that flow's actions, as if the packet had hit it, but counting
 * nothing (neither a hit nor a miss, nor the flow's stats). A flow gone meanwhile sends the packet back up
 * (reason R_EXECUTE, trailer kept) and the agent runs the actions in userspace.
 *
 * Every map is pinned by name under $TC_BPF_MNT/tc/globals, so a restarted agent reattaches to the same flows.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_MASKS 32
#define MAX_ACTIONS 32
#define MAX_FLOWS 65536
#define MAX_PORTS 4096
#define MAX_DATA_TAGS 6
#define META_LEN 16
#define EXEC_LEN 96
#define PROBE_ETH_TYPE 0x88B5

/* Field bits of mn_key.present (midonet.packets.flowmatch.BITS, and tunnel_id). */
#define F_IN_PORT (1u << 0)
#define F_ETH_SRC (1u << 1)
#define F_ETH_DST (1u << 2)
#define F_ETH_TYPE (1u << 3)
#define F_VLAN (1u << 4)
#define F_ARP_OP (1u << 5)
#define F_ARP_SHA (1u << 6)
#define F_ARP_SPA (1u << 7)
#define F_ARP_THA (1u << 8)
#define F_ARP_TPA (1u << 9)
#define F_IP_SRC (1u << 10)
#define F_IP_DST (1u << 11)
#define F_IP_PROTO (1u << 12)
#define F_IP_TOS (1u << 13)
#define F_IP_TTL (1u << 14)
#define F_IP_FRAG (1u << 15)
#define F_TP_SRC (1u << 16)
#define F_TP_DST (1u << 17)
#define F_TUNNEL_ID (1u << 20)
#define F_ARP (F_ARP_OP | F_ARP_SHA | F_ARP_SPA | F_ARP_THA | F_ARP_TPA)
#define F_IP (F_IP_SRC | F_IP_DST | F_IP_PROTO | F_IP_TOS | F_IP_TTL | F_IP_FRAG)

enum mn_frag { FRAG_NONE = 1, FRAG_FIRST = 2, FRAG_LATER = 3 };

enum mn_action_kind {
	A_OUTPUT = 1, A_SET_ETH_SRC, A_SET_ETH_DST, A_SET_IP_SRC, A_SET_IP_DST, A_SET_IP_TTL, A_SET_IP_TOS,
	A_SET_TP_SRC, A_SET_TP_DST, A_PUSH_VLAN, A_POP_VLAN, A_SET_TUNNEL, A_USERSPACE,
};

enum mn_port_kind { PORT_NETDEV = 1, PORT_VXLAN = 2 };

enum mn_reason { R_MISS = 1, R_USERSPACE = 2, R_PROBE = 3, R_EXECUTE = 4 };

/* Per-CPU counters (midonet.datapath.linux.layout.Counter). */
enum mn_counter {
	C_HITS, C_MISSES, C_MALFORMED, C_NO_PORT, C_NO_TUNNEL, C_BAD_ENCAPSULATION, C_ACTION_FAILED,
	C_NO_UPCALL, C_UPCALLS_SENT, C_MAX,
};

struct mn_key {
	__u32 mask_id;   /* a lookup key: the mask's slot; a mask: 1 when the slot is in use */
	__u32 present;   /* a key: the fields the packet has; a mask: the fields the flow matches */
	__u32 in_port;
	__u32 tunnel_id;
	__u8 eth_dst[6];
	__u8 eth_src[6];
	__u16 eth_type;
	__u16 vlan0;     /* outermost VLAN id */
	__u16 vlan1;
	__u8 n_vlans;    /* 0, 1, 2, or 3 for "three or more" */
	__u8 ip_proto;
	__u32 ip_src;    /* network order */
	__u32 ip_dst;
	__u8 ip_tos;
	__u8 ip_ttl;
	__u8 ip_frag;
	__u8 pad0;
	__u16 tp_src;
	__u16 tp_dst;
	__u16 arp_op;
	__u16 pad1;
	__u32 arp_spa;   /* network order */
	__u32 arp_tpa;
	__u8 arp_sha[6];
	__u8 arp_tha[6];
	__u32 pad2;
} __attribute__((aligned(8)));

#define KEY_WORDS (sizeof(struct mn_key) / 8)

struct mn_action {
	__u8 kind;
	__u8 flags;      /* bit 0: first field of a SetFields group (for listing flows back) */
	__u16 u16;       /* TTL, TOS, L4 port, VLAN id */
	__u32 u32;       /* output port, VNI */
	__u8 bytes[8];   /* MAC; IPv4 address; tunnel source and destination (network order) */
};

struct mn_flow {
	__u64 packets;
	__u64 bytes;
	__u64 last_used; /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u32 n_actions;
	__u32 reserved;
	struct mn_action actions[MAX_ACTIONS];
};

struct mn_port {
	__u32 ifindex;
	__u32 kind;
};

struct mn_config {
	__u32 upcall_ifindex;
	__u32 n_masks;   /* slots [0, n_masks) may be in use */
	__u32 next_port; /* the agent's next port number: numbers are never reused, even across restarts */
	__u32 reserved;
};

/* In front of an upcalled packet; looks like an Ethernet header (unicast, EtherType 0x88B5) to the veth. */
struct mn_meta {
	__u8 magic;      /* 0x02: a locally administered unicast "destination MAC" */
	__u8 reason;
	__u16 port;      /* network order */
	__u32 tunnel_id; /* network order; bit 31 set when the packet came from a tunnel */
	__u32 tunnel_src;/* network order */
	__u16 eth_type;  /* PROBE_ETH_TYPE, network order */
	__u16 reserved;
};

/* At the end of a packet the agent executes through a kernel flow (EXEC_LEN bytes). */
struct mn_exec {
	struct mn_key key;  /* the installed flow's key in mn_flows (slot + masked values): names its actions */
	__u32 seq;          /* the agent's number for this execute (to run it in userspace if the flow is gone) */
	__u32 in_port;
	__u8 magic[8];      /* "mn-exec!" */
};
_Static_assert(sizeof(struct mn_exec) == EXEC_LEN, "struct mn_exec is EXEC_LEN bytes (layout.EXEC)");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_MASKS);
	__type(key, __u32);
	__type(value, struct mn_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_masks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct mn_key);
	__type(value, struct mn_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);               /* port number */
	__type(value, struct mn_port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);               /* ifindex */
	__type(value, __u32);             /* port number */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_ifports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mn_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mn_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&mn_counters, &which);
	if (value)
		*value += 1;   /* per CPU: no atomics needed */
}

static __always_inline int is_vlan(__u16 eth_type)
{
	return eth_type == ETH_P_8021Q || eth_type == ETH_P_8021AD || eth_type == 0x9100;
}

/* The packet's tunnel key (zero when it did not come from a tunnel). */
struct mn_tunnel_in {
	__u32 id;
	__u32 src;       /* host order */
	__u32 valid;
};

/* Parse like midonet.packets.flowmatch.parse_frame: 0, -1 malformed, 1 a probe. */
static __always_inline int parse(struct __sk_buff *skb, struct mn_key *k)
{
	__u8 eth[14];
	__u16 eth_type;
	__u32 off = 14, i;

	if (bpf_skb_load_bytes(skb, 0, eth, 14) < 0)
		return -1;
	__builtin_memcpy(k->eth_dst, eth, 6);
	__builtin_memcpy(k->eth_src, eth + 6, 6);
	eth_type = ((__u16)eth[12] << 8) | eth[13];
	k->present |= F_ETH_SRC | F_ETH_DST | F_ETH_TYPE | F_VLAN;
	if (skb->vlan_present) {   /* the outermost tag, taken off by the receive path */
		k->vlan0 = skb->vlan_tci & 0x0fff;
		k->n_vlans = 1;
	}
	for (i = 0; i < MAX_DATA_TAGS; i++) {
		__u8 tag[4];
		if (!is_vlan(eth_type))
			break;
		if (bpf_skb_load_bytes(skb, off, tag, 4) < 0)
			return -1;
		if (k->n_vlans == 0)
			k->vlan0 = (((__u16)tag[0] << 8) | tag[1]) & 0x0fff;
		else if (k->n_vlans == 1)
			k->vlan1 = (((__u16)tag[0] << 8) | tag[1]) & 0x0fff;
		if (k->n_vlans < 3)
			k->n_vlans++;
		eth_type = ((__u16)tag[2] << 8) | tag[3];
		off += 4;
	}
	if (is_vlan(eth_type))
		return -1;   /* deeper than we parse: treated as malformed */
	k->eth_type = eth_type;

	if (eth_type == ETH_P_IP) {
		__u8 ip[20];
		__u32 hlen, total, frag;
		if (bpf_skb_load_bytes(skb, off, ip, 20) < 0)
			return -1;
		hlen = (ip[0] & 0x0f) << 2;
		if ((ip[0] >> 4) != 4 || hlen < 20)
			return -1;
		total = ((__u32)ip[2] << 8) | ip[3];
		if (total < hlen || off + total > skb->len)
			return -1;
		k->present |= F_IP;
		k->ip_tos = ip[1];
		k->ip_ttl = ip[8];
		k->ip_proto = ip[9];
		__builtin_memcpy(&k->ip_src, ip + 12, 4);
		__builtin_memcpy(&k->ip_dst, ip + 16, 4);
		frag = (((__u32)ip[6] << 8) | ip[7]);
		if (frag & 0x1fff) {
			k->ip_frag = FRAG_LATER;
			return 0;
		}
		k->ip_frag = (frag & 0x2000) ? FRAG_FIRST : FRAG_NONE;
		{
			__u32 l4 = off + hlen, avail = total - hlen;
			__u8 h[14];
			if (k->ip_proto == IPPROTO_TCP) {
				if (avail < 20 || bpf_skb_load_bytes(skb, l4, h, 14) < 0)
					return -1;
				if (((__u32)(h[12] >> 4) << 2) < 20 || ((__u32)(h[12] >> 4) << 2) > avail)
					return -1;
			} else if (k->ip_proto == IPPROTO_UDP) {
				__u32 length;
				if (avail < 8 || bpf_skb_load_bytes(skb, l4, h, 8) < 0)
					return -1;
				length = ((__u32)h[4] << 8) | h[5];
				if (length < 8 || (length > avail && !(frag & 0x2000)))
					return -1;
			} else if (k->ip_proto == IPPROTO_ICMP) {
				if (avail < 8 || bpf_skb_load_bytes(skb, l4, h, 8) < 0)
					return -1;
				k->present |= F_TP_SRC | F_TP_DST;
				k->tp_src = h[0];
				k->tp_dst = h[1];
				return 0;
			} else {
				return 0;
			}
			k->present |= F_TP_SRC | F_TP_DST;
			k->tp_src = ((__u16)h[0] << 8) | h[1];
			k->tp_dst = ((__u16)h[2] << 8) | h[3];
		}
		return 0;
	}
	if (eth_type == ETH_P_ARP) {
		__u8 arp[28];
		if (bpf_skb_load_bytes(skb, off, arp, 28) < 0)
			return -1;
		if (arp[0] != 0 || arp[1] != 1 || arp[2] != 8 || arp[3] != 0 || arp[4] != 6 || arp[5] != 4)
			return -1;
		k->present |= F_ARP;
		k->arp_op = ((__u16)arp[6] << 8) | arp[7];
		__builtin_memcpy(k->arp_sha, arp + 8, 6);
		__builtin_memcpy(&k->arp_spa, arp + 14, 4);
		__builtin_memcpy(k->arp_tha, arp + 18, 6);
		__builtin_memcpy(&k->arp_tpa, arp + 24, 4);
		return 0;
	}
	if (eth_type == PROBE_ETH_TYPE) {
		__u8 magic[8];
		if (bpf_skb_load_bytes(skb, off, magic, 8) == 0 && magic[0] == 'm' && magic[1] == 'n' &&
		    magic[2] == '-' && magic[3] == 'p' && magic[4] == 'r' && magic[5] == 'o' && magic[6] == 'b' &&
		    magic[7] == 'e')
			return 1;
	}
	return 0;
}

/* Hand the packet (as it is now) to the agent through the upcall veth. */
static __always_inline int upcall(struct __sk_buff *skb, __u32 port, __u8 reason, struct mn_tunnel_in *tun)
{
	__u32 zero = 0;
	struct mn_config *cfg = bpf_map_lookup_elem(&mn_config, &zero);
	struct mn_meta meta = {};

	if (!cfg || !cfg->upcall_ifindex) {
		count(C_NO_UPCALL);
		return TC_ACT_SHOT;
	}
	meta.magic = 0x02;
	meta.reason = reason;
	meta.port = bpf_htons((__u16)port);
	if (tun->valid) {
		meta.tunnel_id = bpf_htonl(tun->id | 0x80000000u);
		meta.tunnel_src = bpf_htonl(tun->src);
	}
	meta.eth_type = bpf_htons(PROBE_ETH_TYPE);
	if (bpf_skb_change_head(skb, META_LEN, 0) < 0 || bpf_skb_store_bytes(skb, 0, &meta, META_LEN, 0) < 0) {
		count(C_NO_UPCALL);
		return TC_ACT_SHOT;
	}
	count(C_UPCALLS_SENT);
	return bpf_redirect(cfg->upcall_ifindex, 0);
}

/* The offset of the IPv4 header (past the VLAN tags in the packet data), 0 if the packet is not IPv4. */
static __always_inline __u32 ipv4_offset(struct __sk_buff *skb)
{
	__u8 type[2];
	__u32 off = 12, i;

	for (i = 0; i < MAX_DATA_TAGS + 1; i++) {
		__u16 eth_type;
		if (bpf_skb_load_bytes(skb, off, type, 2) < 0)
			return 0;
		eth_type = ((__u16)type[0] << 8) | type[1];
		if (!is_vlan(eth_type))
			return eth_type == ETH_P_IP ? off + 2 : 0;
		off += 4;
	}
	return 0;
}

/* The L4 checksum offset and flags for address and port rewrites; 0 when the packet has no L4 checksum to fix. */
static __always_inline __u32 l4_csum(__u8 proto, __u32 l4, __u64 *flags)
{
	if (proto == IPPROTO_TCP) {
		*flags = 0;
		return l4 + 16;
	}
	if (proto == IPPROTO_UDP) {
		*flags = BPF_F_MARK_MANGLED_0;
		return l4 + 6;
	}
	return 0;
}

/* Apply one header rewrite; 0 on success, -1 when it does not apply to this packet. */
static __always_inline int set_field(struct __sk_buff *skb, struct mn_action *a)
{
	__u8 ip[20];
	__u32 l3, l4, csum;
	__u64 csum_flags = 0;
	int later;

	if (a->kind == A_SET_ETH_DST)
		return bpf_skb_store_bytes(skb, 0, a->bytes, 6, 0) < 0 ? -1 : 0;
	if (a->kind == A_SET_ETH_SRC)
		return bpf_skb_store_bytes(skb, 6, a->bytes, 6, 0) < 0 ? -1 : 0;
	l3 = ipv4_offset(skb);
	if (!l3 || bpf_skb_load_bytes(skb, l3, ip, 20) < 0)
		return -1;
	l4 = l3 + ((ip[0] & 0x0f) << 2);
	later = ((((__u32)ip[6] << 8) | ip[7]) & 0x1fff) != 0;
	switch (a->kind) {
	case A_SET_IP_SRC:
	case A_SET_IP_DST: {
		__u32 at = l3 + (a->kind == A_SET_IP_SRC ? 12 : 16), old, new;
		__builtin_memcpy(&old, ip + (a->kind == A_SET_IP_SRC ? 12 : 16), 4);
		__builtin_memcpy(&new, a->bytes, 4);
		csum = later ? 0 : l4_csum(ip[9], l4, &csum_flags);
		if (csum && bpf_l4_csum_replace(skb, csum, old, new, csum_flags | BPF_F_PSEUDO_HDR | 4) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, 4) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, at, &new, 4, 0) < 0 ? -1 : 0;
	}
	case A_SET_IP_TTL:
	case A_SET_IP_TOS: {
		/* TTL shares a 16-bit word with the protocol, TOS with the version and header length. */
		__u32 at = a->kind == A_SET_IP_TTL ? 8 : 0;
		__u16 old, new;
		__u8 byte = (__u8)a->u16;
		if (a->kind == A_SET_IP_TTL) {
			old = ((__u16)ip[8] << 8) | ip[9];
			new = ((__u16)byte << 8) | ip[9];
		} else {
			old = ((__u16)ip[0] << 8) | ip[1];
			new = ((__u16)ip[0] << 8) | byte;
		}
		old = bpf_htons(old);
		new = bpf_htons(new);
		if (bpf_l3_csum_replace(skb, l3 + 10, old, new, 2) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, l3 + at, &new, 2, 0) < 0 ? -1 : 0;
	}
	case A_SET_TP_SRC:
	case A_SET_TP_DST: {
		__u32 at = l4 + (a->kind == A_SET_TP_SRC ? 0 : 2);
		__u16 old, new;
		if (later)
			return -1;
		if (ip[9] == IPPROTO_ICMP) {   /* tp_src is the ICMP type, tp_dst the code */
			__u8 tc[2];
			if (bpf_skb_load_bytes(skb, l4, tc, 2) < 0)
				return -1;
			old = ((__u16)tc[0] << 8) | tc[1];
			if (a->kind == A_SET_TP_SRC)
				new = (__u16)((a->u16 & 0xff) << 8) | tc[1];
			else
				new = ((__u16)tc[0] << 8) | (a->u16 & 0xff);
			old = bpf_htons(old);
			new = bpf_htons(new);
			if (bpf_l4_csum_replace(skb, l4 + 2, old, new, 2) < 0)
				return -1;
			return bpf_skb_store_bytes(skb, l4, &new, 2, 0) < 0 ? -1 : 0;
		}
		csum = l4_csum(ip[9], l4, &csum_flags);
		if (!csum)
			return -1;
		if (bpf_skb_load_bytes(skb, at, &old, 2) < 0)
			return -1;
		new = bpf_htons(a->u16);
		if (bpf_l4_csum_replace(skb, csum, old, new, csum_flags | 2) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, at, &new, 2, 0) < 0 ? -1 : 0;
	}
	}
	return -1;
}

static __always_inline int has_vlan(struct __sk_buff *skb)
{
	__u8 type[2];
	if (skb->vlan_present)
		return 1;
	if (bpf_skb_load_bytes(skb, 12, type, 2) < 0)
		return 0;
	return is_vlan(((__u16)type[0] << 8) | type[1]);
}

/* Run a flow's actions; returns the tc verdict. */
static __always_inline int run_actions(struct __sk_buff *skb, struct mn_flow *flow, __u32 in_port,
				       struct mn_tunnel_in *tun_in)
{
	struct bpf_tunnel_key tun = {};
	int have_tunnel = 0;
	__u32 i, n = flow->n_actions;

	for (i = 0; i < MAX_ACTIONS; i++) {
		struct mn_action *a;
		struct mn_port *port;
		int last;

		if (i >= n)
			break;
		a = &flow->actions[i];
		last = i + 1 == n;
		switch (a->kind) {
		case A_OUTPUT:
			port = bpf_map_lookup_elem(&mn_ports, &a->u32);
			if (!port) {
				count(C_NO_PORT);
				break;
			}
			if (port->kind == PORT_VXLAN) {
				if (!have_tunnel) {
					count(C_NO_TUNNEL);
					break;
				}
				if (bpf_skb_set_tunnel_key(skb, &tun, sizeof(tun), BPF_F_ZERO_CSUM_TX) < 0) {
					count(C_ACTION_FAILED);
					return TC_ACT_SHOT;
				}
			}
			if (last)
				return bpf_redirect(port->ifindex, 0);
			bpf_clone_redirect(skb, port->ifindex, 0);
			break;
		case A_SET_TUNNEL:
			tun.tunnel_id = a->u32;
			tun.remote_ipv4 = ((__u32)a->bytes[4] << 24) | ((__u32)a->bytes[5] << 16) |
					  ((__u32)a->bytes[6] << 8) | a->bytes[7];
			tun.local_ipv4 = ((__u32)a->bytes[0] << 24) | ((__u32)a->bytes[1] << 16) |
					 ((__u32)a->bytes[2] << 8) | a->bytes[3];
			tun.tunnel_ttl = 64;
			have_tunnel = 1;
			break;
		case A_PUSH_VLAN:
			if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), a->u16 & 0x0fff) < 0) {
				count(C_ACTION_FAILED);
				return TC_ACT_SHOT;
			}
			break;
		case A_POP_VLAN:
			if (!has_vlan(skb) || bpf_skb_vlan_pop(skb) < 0) {
				count(C_ACTION_FAILED);
				return TC_ACT_SHOT;
			}
			break;
		case A_USERSPACE:
			if (!last) {   /* the agent keeps such flows in userspace: never installed here */
				count(C_ACTION_FAILED);
				return TC_ACT_SHOT;
			}
			return upcall(skb, in_port, R_USERSPACE, tun_in);
		default:
			if (set_field(skb, a) < 0) {
				count(C_ACTION_FAILED);
				return TC_ACT_SHOT;
			}
		}
	}
	return TC_ACT_SHOT;
}

static __always_inline int process(struct __sk_buff *skb, __u32 in_port, struct mn_tunnel_in *tun)
{
	struct mn_key key = {}, masked;
	struct mn_flow *flow = 0;
	struct mn_config *cfg;
	__u32 zero = 0, i, n_masks, bytes;
	int parsed;

	parsed = parse(skb, &key);
	if (parsed < 0) {
		count(C_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (parsed > 0)
		return upcall(skb, in_port, R_PROBE, tun);
	key.in_port = in_port;
	key.present |= F_IN_PORT;
	if (tun->valid) {
		key.tunnel_id = tun->id;
		key.present |= F_TUNNEL_ID;
	}
	cfg = bpf_map_lookup_elem(&mn_config, &zero);
	n_masks = cfg ? cfg->n_masks : 0;
	for (i = 0; i < MAX_MASKS; i++) {
		__u64 *k = (__u64 *)&key, *m, *out = (__u64 *)&masked;
		struct mn_key *mask;
		__u32 w;

		if (i >= n_masks)
			break;
		mask = bpf_map_lookup_elem(&mn_masks, &i);
		if (!mask || !mask->mask_id)
			continue;
		m = (__u64 *)mask;
#pragma unroll
		for (w = 0; w < KEY_WORDS; w++)
			out[w] = k[w] & m[w];
		masked.mask_id = i;
		flow = bpf_map_lookup_elem(&mn_flows, &masked);
		if (flow)
			break;
	}
	if (!flow) {
		count(C_MISSES);
		return upcall(skb, in_port, R_MISS, tun);
	}
	count(C_HITS);
	bytes = skb->len + (skb->vlan_present ? 4 : 0);
	__sync_fetch_and_add(&flow->packets, 1);
	__sync_fetch_and_add(&flow->bytes, bytes);
	flow->last_used = bpf_ktime_get_ns();
	return run_actions(skb, flow, in_port, tun);
}

/* A packet the agent sent into the upcall veth to run an installed flow's actions (see the top). */
static __always_inline int execute(struct __sk_buff *skb)
{
	struct mn_tunnel_in tun = {};
	struct mn_exec ex;
	struct mn_flow *flow;
	__u32 len = skb->len;

	if (len < EXEC_LEN + 14 || bpf_skb_load_bytes(skb, len - EXEC_LEN, &ex, EXEC_LEN) < 0)
		return TC_ACT_OK;
	if (ex.magic[0] != 'm' || ex.magic[1] != 'n' || ex.magic[2] != '-' || ex.magic[3] != 'e' ||
	    ex.magic[4] != 'x' || ex.magic[5] != 'e' || ex.magic[6] != 'c' || ex.magic[7] != '!')
		return TC_ACT_OK;
	flow = bpf_map_lookup_elem(&mn_flows, &ex.key);
	if (!flow)
		return upcall(skb, ex.in_port, R_EXECUTE, &tun);
	if (bpf_skb_change_tail(skb, len - EXEC_LEN, 0) < 0) {
		count(C_ACTION_FAILED);
		return TC_ACT_SHOT;
	}
	return run_actions(skb, flow, ex.in_port, &tun);
}

SEC("mn_port")
int mn_port_ingress(struct __sk_buff *skb)
{
	struct mn_tunnel_in tun = {};
	struct mn_config *cfg;
	__u32 ifindex = skb->ifindex, zero = 0;
	__u32 *port = bpf_map_lookup_elem(&mn_ifports, &ifindex);

	if (port)
		return process(skb, *port, &tun);
	cfg = bpf_map_lookup_elem(&mn_config, &zero);
	if (cfg && cfg->upcall_ifindex == ifindex)
		return execute(skb);   /* the upcall veth: packets the agent executes */
	return TC_ACT_OK;   /* not (or no longer) a datapath port: the host's own traffic */
}

SEC("mn_tunnel")
int mn_tunnel_ingress(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct mn_tunnel_in tun = {};
	__u32 ifindex = skb->ifindex;
	__u32 *port = bpf_map_lookup_elem(&mn_ifports, &ifindex);

	if (!port)
		return TC_ACT_OK;
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0) {
		count(C_BAD_ENCAPSULATION);
		return TC_ACT_SHOT;
	}
	tun.id = key.tunnel_id;
	tun.src = key.remote_ipv4;
	tun.valid = 1;
	return process(skb, *port, &tun);
}

char _license[] SEC("license") = "Dual BSD/GPL";
