%% Generated from the Go declaration of the protocol (portproto/spec.go,
%% portproto/table.go) by "make generate": do not edit. The rules are
%% listed in doc/protocol.md, "Vocabulary and limits".
-ifndef(TUNCTL_PROTO_HRL).
-define(TUNCTL_PROTO_HRL, true).

-define(TUNCTL_PROTO_VERSION, 1).
-define(TUNCTL_CAPABILITIES, [tun, tap, multi_queue, vnet_hdr, netlink, batch, offload]).
-define(TUNCTL_DEVICE_FLAGS, [tun, tap, multi_queue, no_pi, one_queue, vnet_hdr, tun_excl]).
-define(TUNCTL_FILTER_RULES, [ipv4, arp, ipv6, icmp, tcp, udp, icmpv6]).
-define(TUNCTL_OFFLOADS, [csum, tso4, tso6, tso_ecn, uso4, uso6]).
%% The same, as types.
-define(TUNCTL_DEVICE_FLAG_TYPE, tun | tap | multi_queue | no_pi | one_queue | vnet_hdr | tun_excl).
-define(TUNCTL_FILTER_RULE_TYPE, ipv4 | arp | ipv6 | icmp | tcp | udp | icmpv6).
%% IFF_* value of each device flag.
-define(TUNCTL_IFF_TUN, 16#1).
-define(TUNCTL_IFF_TAP, 16#2).
-define(TUNCTL_IFF_MULTI_QUEUE, 16#100).
-define(TUNCTL_IFF_NO_PI, 16#1000).
-define(TUNCTL_IFF_ONE_QUEUE, 16#2000).
-define(TUNCTL_IFF_VNET_HDR, 16#4000).
-define(TUNCTL_IFF_TUN_EXCL, 16#8000).
%% {Name, Arity} of every command of {call, Id, Cmd}, in table order.
-define(TUNCTL_COMMANDS, [
    {open, 3},
    {close, 1},
    {read, 2},
    {addr_add, 4},
    {addr_del, 3},
    {link_set, 2},
    {link_info, 1},
    {persist, 2},
    {owner, 2},
    {group, 2},
    {netns, 1},
    {filter, 2},
    {deliver, 2},
    {offload, 2},
    {stats, 1},
    {addr_set, 3},
    {addr_list, 1},
    {dstaddr, 2},
    {broadcast, 2},
    {ioctl, 3},
    {relay_listen, 1},
    {relay_accept, 2},
    {relay, 2}
]).
-define(TUNCTL_MAX_REF, 2147483647).
-define(TUNCTL_MAX_NAME_LEN, 15).
-define(TUNCTL_MAX_PACKET, 65551).
-define(TUNCTL_MAX_FRAME, 262144).
-define(TUNCTL_MAX_BATCH, 64).
-define(TUNCTL_MAX_ETHERTYPE, 65535).
-define(TUNCTL_MAX_IP_PROTO, 255).

-endif.
