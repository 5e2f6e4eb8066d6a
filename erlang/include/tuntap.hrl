%% TUN/TAP constants and records, as msantos/tunctl 1.0's include/tuntap.hrl
%% (same macro and record names), for programs that include it:
%%
%%   -include_lib("tunctl/include/tuntap.hrl").
%%
%% It needs no procket: ?IOW/?IOR are defined here unless already defined
%% (by procket's ioctl.hrl, included first).

-define(SIZEOF_INT, 4).
-define(SIZEOF_UNSIGNED_INT, ?SIZEOF_INT).

% Native integers in binaries: <<?UINT16(N), ...>> and <<N:?UINT16>>.
-define(UINT16(N), N:2/native-unsigned-integer-unit:8).
-define(UINT32(N), N:4/native-unsigned-integer-unit:8).
-define(UINT16, 2/native-unsigned-integer-unit:8).
-define(UINT32, 4/native-unsigned-integer-unit:8).

% ioctl(2) request numbers (Linux asm-generic/ioctl.h)
-ifndef(IOC_WRITE).
-define(IOC_WRITE, 1).
-endif.
-ifndef(IOC_READ).
-define(IOC_READ, 2).
-endif.
-ifndef(IOC).
-define(IOC(Dir, Type, Nr, Size), (((Dir) bsl 30) bor ((Size) bsl 16) bor ((Type) bsl 8) bor (Nr))).
-endif.
-ifndef(IOW).
-define(IOW(Type, Nr, Size), ?IOC(?IOC_WRITE, Type, Nr, Size)).
-endif.
-ifndef(IOR).
-define(IOR(Type, Nr, Size), ?IOC(?IOC_READ, Type, Nr, Size)).
-endif.

% ifconfig
-define(IFF_UP, 16#01).
-define(IFF_POINTOPOINT, 16#10).
-define(IFF_RUNNING, 16#40).

% Ioctl defines: what tunctl:ioctl/3 accepts (any other request: eperm)
-define(TUNSETNOCSUM, ?IOW($T, 200, ?SIZEOF_INT)).
-define(TUNSETDEBUG, ?IOW($T, 201, ?SIZEOF_INT)).
-define(TUNSETIFF, ?IOW($T, 202, ?SIZEOF_INT)).
-define(TUNSETPERSIST, ?IOW($T, 203, ?SIZEOF_INT)).
-define(TUNSETOWNER, ?IOW($T, 204, ?SIZEOF_INT)).
-define(TUNSETLINK, ?IOW($T, 205, ?SIZEOF_INT)).
-define(TUNSETGROUP, ?IOW($T, 206, ?SIZEOF_INT)).
-define(TUNGETFEATURES, ?IOR($T, 207, ?SIZEOF_UNSIGNED_INT)).
-define(TUNSETOFFLOAD, ?IOW($T, 208, ?SIZEOF_UNSIGNED_INT)).
-define(TUNSETTXFILTER, ?IOW($T, 209, ?SIZEOF_UNSIGNED_INT)).
-define(TUNGETIFF, ?IOR($T, 210, ?SIZEOF_UNSIGNED_INT)).
-define(TUNGETSNDBUF, ?IOR($T, 211, ?SIZEOF_INT)).
-define(TUNSETSNDBUF, ?IOW($T, 212, ?SIZEOF_INT)).

% TUNSETIFF ifr flags, from the protocol's declaration
-include("tunctl_proto.hrl").
-define(IFF_TUN, ?TUNCTL_IFF_TUN).
-define(IFF_TAP, ?TUNCTL_IFF_TAP).
-define(IFF_MULTI_QUEUE, ?TUNCTL_IFF_MULTI_QUEUE).
-define(IFF_NO_PI, ?TUNCTL_IFF_NO_PI).
-define(IFF_ONE_QUEUE, ?TUNCTL_IFF_ONE_QUEUE).
-define(IFF_VNET_HDR, ?TUNCTL_IFF_VNET_HDR).
-define(IFF_TUN_EXCL, ?TUNCTL_IFF_TUN_EXCL).

% struct tun_pi: the packet information header (tunctl:header/1)
-record(tun_pi, {
    % 2/native-unsigned-integer-unit:8
    flags,
    % 2/native-unsigned-integer-unit:8
    proto
}).

-define(TUN_FLT_ALLMULTI, 16#0001).

% struct tun_filter (TUNSETTXFILTER)
-record(tun_filter, {
    % TUN_FLT_ flags: 2/native-unsigned-integer-unit:8
    flags,
    % 2/native-unsigned-integer-unit:8
    count,
    addr
}).
