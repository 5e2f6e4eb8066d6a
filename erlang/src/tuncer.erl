%% @doc TUN/TAP devices as processes.
%%
%% Each device is a `tuncer' process owning one `tunctl_port' port program
%% (doc/protocol.md), which owns the TUN/TAP file descriptor. The API is the
%% one of msantos/tunctl 1.0.
%%
%% == Owner ==
%%
%% The process calling `create/0,1,2' owns the device and is linked to it.
%% `controlling_process/2' moves ownership (and the link). When the owner
%% exits, for any reason, the device is closed and goes away (unless it was
%% made persistent with `persist/2').
%%
%% == Messages to the owner ==
%%
%% <ul>
%% <li>`{tuntap, Dev, Packet}': a packet read from the device (active mode).
%%     `Packet' is a sub-binary of the frame the port sent; owners that keep
%%     packets for long should `binary:copy/1' them.</li>
%% <li>`{tuntap_batch, Dev, [Packet, ...]}': instead of `tuntap' messages
%%     once `{deliver, batch}' was set (`setopt/2', `create/2'): the packets
%%     ready at once, oldest first, at least 1 and at most 64 per message.
%%     `{active, N}' counts packets, not messages.</li>
%% <li>`{tuntap_passive, Dev}': an `{active, N}' counter reached zero and
%%     the device is now passive, as `{tcp_passive, Socket}'.</li>
%% <li>`{tuntap_error, Dev, Posix}': an asynchronous error, for example a
%%     failed `send/2' (`send/2' returns before the packet is written).</li>
%% </ul>
%%
%% == Flow control ==
%%
%% `{active, true | false | once | N}' behave as in `inet': `once' delivers
%% one packet then turns passive; `N' adds to a counter, and at zero the
%% device turns passive and `{tuntap_passive, Dev}' is sent. Packets read by
%% the port are only those the owner may receive: a passive device leaves
%% packets in the kernel queue, where `recv/1,2,3' and `read/1,2' find them.
%%
%% == Port failure ==
%%
%% If the port program exits, the device process stops with reason
%% `{tunctl_port_exit, Status}' (`Status' the exit status, or the port's exit
%% reason). The owner is linked: an owner that does not trap exits dies with
%% that reason, one that traps exits receives
%% `{'EXIT', Dev, {tunctl_port_exit, Status}}'.
-module(tuncer).

-export([
    create/0, create/1, create/2,
    devname/1, flags/1, getfd/1,
    destroy/1,

    persist/2,
    owner/2, group/2,

    read/1, read/2,
    write/2,

    send/2, sendv/2,
    recv/1, recv/2, recv/3,

    up/2, up/3, down/1,
    addr_add/2, addr_add/3,
    addr_del/2, addr_del/3,
    dstaddr/2, broadcast/2,
    mtu/1, mtu/2,

    filter/2, stats/1,
    header/1, header/2,

    controlling_process/2,
    setopt/2,

    start_link/2
]).

-include("tunctl_proto.hrl").

%% 65535 + packet information (4) + virtio-net header (12).
-define(MAX_PACKET, ?TUNCTL_MAX_PACKET).
-define(READ_SIZE, ?TUNCTL_MAX_PACKET).

-type dev() :: pid().
-type handle() :: tunctl:fd().
-type posix() :: atom().
-type active() :: boolean() | once | -32768..32767.
-type flag() :: ?TUNCTL_DEVICE_FLAG_TYPE.
-type option() ::
    flag()
    | {active, active()}
    | {addr, ip()}
    | {netmask, ip()}
    | {prefixlen, 0..128}
    | {dstaddr, ip()}
    | {mtu, integer()}
    | {up, boolean()}
    | {namespace, file:filename_all()}
    | {filter, [rule()]}
    | {deliver, packet | batch}
    | {offload, [offload()]}
    | {port_options, port_options()}.
-type offload() :: csum | tso4 | tso6 | tso_ecn | uso4 | uso6.
-type options() :: [option()].
-type port_option() ::
    {parallelism, boolean()}
    | {busy_limits_port, {non_neg_integer(), non_neg_integer()} | disabled}
    | {busy_limits_msgq, {non_neg_integer(), non_neg_integer()} | disabled}.
-type port_options() :: [port_option()].
% msantos/tunctl 1.0's name for port_option()
-type portopt() :: port_option().
-type ip() :: inet:ip_address() | string() | binary().
-type mask() :: 0..128 | ip().
-type rule() ::
    ?TUNCTL_FILTER_RULE_TYPE | {ethertype, 0..?TUNCTL_MAX_ETHERTYPE} | {ip_proto, 0..?TUNCTL_MAX_IP_PROTO}.
-type stats() :: #{
    rx_packets := non_neg_integer(),
    rx_bytes := non_neg_integer(),
    tx_packets := non_neg_integer(),
    tx_bytes := non_neg_integer(),
    filtered := non_neg_integer(),
    rx_errors := non_neg_integer(),
    tx_errors := non_neg_integer()
}.
-type vnet_hdr() :: #{
    flags := byte(),
    gso_type := byte(),
    hdr_len := 0..65535,
    gso_size := 0..65535,
    csum_start := 0..65535,
    csum_offset := 0..65535
}.
-type header() :: #{flags => 0..65535, proto => 0..65535, vnet => vnet_hdr()}.

-export_type([dev/0, handle/0, option/0, options/0, port_option/0, port_options/0, portopt/0]).
-export_type([active/0, ip/0, mask/0, rule/0, stats/0, header/0, vnet_hdr/0]).


%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc Create a TAP device named by the kernel, passive.
%% @equiv create(<<>>)
-spec create() -> {ok, dev()} | {error, term()}.
create() ->
    create(<<>>).

%% @doc Create a device named `Name' with the default options
%% `[tap, no_pi, {active, false}]'.
%% @equiv create(Name, [])
-spec create(iodata()) -> {ok, dev()} | {error, term()}.
create(Name) ->
    create(Name, []).

%% @doc Create a TUN/TAP device, or attach to an existing one.
%%
%% `Name' is the interface name (a string or binary); `<<>>' lets the kernel
%% choose one (`tap0', `tun0', ...). Names of 16 bytes or more, names that
%% are not a string or binary, and options that are not a list return
%% `{error, badargs}', as msantos/tunctl 1.0 did. A device created here
%% belongs to the port's real uid (`TUNSETOWNER'). When an interface called
%% `Name' exists, the device is attached only if it is a TUN/TAP device the
%% caller may use: root may use any; anyone else one whose owner (when set)
%% is its uid and whose group (when set) is one of its groups, an ownerless
%% device being root's (`{error, eperm}' otherwise: doc/security.md); a
%% `multi_queue' device opened again adds one queue.
%%
%% Device flags: `tun', `tap', `no_pi', `one_queue', `multi_queue',
%% `vnet_hdr', `tun_excl'. When none is given they default to
%% `[tap, no_pi]'; when some are given they are used as given, with `tap'
%% added when neither `tun' nor `tap' is present. `{active, A}' defaults to
%% `false'. `{port_options, PortOpts}' are `open_port/2' options for the
%% device's port, `{parallelism, Bool}', `{busy_limits_port, Limits}' and
%% `{busy_limits_msgq, Limits}' (`Limits' `{Low, High}' or `disabled'); the
%% default, as 1.0, disables both busy limits. Unknown options are
%% ignored, as 1.0 did.
%%
%% Configuration, applied before `create' returns and all-or-nothing: if a
%% step fails the device is closed (so a device created by this call is
%% removed) and `create' returns that step's error.
%% <ul>
%% <li>`{addr, IP}': add an address (as `addr_add/2,3'); the link goes up
%%     unless `{up, false}' is given.</li>
%% <li>`{netmask, Mask}' or `{prefixlen, N}': the prefix of `{addr, IP}'
%%     (default as `up/2').</li>
%% <li>`{dstaddr, IP}': the point-to-point peer of `{addr, IP}' (as
%%     `dstaddr/2'); the address becomes `/32' or `/128'.</li>
%% <li>`{mtu, N}', `{up, Bool}': as `mtu/2', `up/2' and `down/1'.</li>
%% <li>`{filter, Rules}': as `filter/2', set before any packet is read.</li>
%% <li>`{deliver, packet | batch}' and `{offload, Offloads}': as
%%     `setopt/2'.</li>
%% <li>`{namespace, Path}': create the device in the network namespace at
%%     `Path' (`/run/netns/NAME', `/proc/PID/ns/net'); configuration applies
%%     there. Refused with `{error, eacces}' unless the administrator's
%%     policy (`/etc/tunctl/policy') has an `allow_netns' pattern matching
%%     `Path'. The port is started with `-allow-netns' and needs
%%     `CAP_SYS_ADMIN' as well as `CAP_NET_ADMIN': without it
%%     `{error, eperm}'. No device is created either way.</li>
%% </ul>
%% Steps run in this order: namespace, open, filter, offload, MTU, link up,
%% address (with `{up, false}': address, link down). When attaching to an existing persistent device, steps that
%% succeeded before a failing one are not undone.
%%
%% A known option with a malformed value raises `badarg'; an invalid value (an address that
%% does not parse, a non-contiguous netmask, `{dstaddr, _}' without
%% `{addr, _}', mixed families) returns `{error, einval}'.
%%
%% ```
%% 1> {ok, Dev} = tuncer:create(<<"tun7">>, [tun, no_pi, {active, true}]).
%% {ok,<0.90.0>}
%% 2> {ok, P2P} = tuncer:create(<<>>, [tun, no_pi, {addr, "2001:db8::1"},
%%        {dstaddr, "2001:db8::2"}, {mtu, 1400}, {filter, [icmpv6, udp]}]).
%% {ok,<0.93.0>}
%% '''
-spec create(iodata(), options()) -> {ok, dev()} | {error, term()}.
create(Name, Options) ->
    case tunctl_opts:create_args(Name, Options) of
        {ok, Args} -> tunctl_device:start(Args);
        {error, _} = Error -> Error
    end.

%% @doc As `create/2' (the device is linked to the caller), under
%% msantos/tunctl 1.0's other name.
-spec start_link(iodata(), options()) -> {ok, dev()} | {error, term()}.
start_link(Name, Options) ->
    create(Name, Options).

%% @doc The interface name.
-spec devname(dev()) -> binary().
devname(Dev) when is_pid(Dev) ->
    call(Dev, devname).

%% @doc The interface flags (`IFF_TUN', `IFF_NO_PI', ...) as an integer.
-spec flags(dev()) -> non_neg_integer().
flags(Dev) when is_pid(Dev) ->
    call(Dev, flags).

%% @doc A file descriptor of the device, held by this VM: one end of an
%% `AF_UNIX' `SOCK_SEQPACKET' socket whose other end the port relays, so
%% each packet read from the device is one message on it and each message
%% written to it is one packet written to the device (while the owner
%% receives nothing: an active owner reads first). Use it as
%% msantos/tunctl 1.0's descriptor: `open_port({fd, FD, FD}, [binary])',
%% or `read/1,2' and `write/2'. The first call makes it; later calls
%% return the same descriptor. It carries packets only: it is not the
%% TUN/TAP descriptor (which stays in the port), so ioctl(2) on it does
%% nothing to the device (`tunctl:ioctl/3' does). When the device is
%% closed, the descriptor reads end-of-file (a port opened on it closes),
%% and this node closes it once no port uses it (doc/design.md).
%% A failure to make it raises `{tunctl_getfd, Posix}'.
%%
%% ```
%% 1> FD = tuncer:getfd(Dev).
%% 21
%% 2> Port = open_port({fd, FD, FD}, [binary]).
%% #Port<0.7>
%% '''
-spec getfd(dev()) -> handle().
getfd(Dev) when is_pid(Dev) ->
    case call(Dev, getfd) of
        Fd when is_integer(Fd) -> Fd;
        {error, Reason} -> erlang:error({tunctl_getfd, Reason}, [Dev])
    end.

%% @doc Close the device and stop its process. A non-persistent device is
%% gone when this returns.
-spec destroy(dev()) -> ok.
destroy(Dev) when is_pid(Dev) ->
    tunctl_device:stop(Dev).

%% @doc Keep the interface after the device is closed (`TUNSETPERSIST').
-spec persist(dev(), boolean()) -> ok | {error, posix()}.
persist(Dev, Bool) when is_pid(Dev), is_boolean(Bool) ->
    port_call(Dev, {persist, Bool}).

%% @doc Set the user owning the interface (`TUNSETOWNER'): a uid, or a user
%% name looked up in `/etc/passwd' by this process (the port opens no
%% files). An unknown name returns `{error, einval}'. Once set, only that
%% user can attach to the device (`create/2' with its name).
%%
%% ```
%% 1> tuncer:owner(Dev, "nobody").
%% ok
%% '''
-spec owner(dev(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
owner(Dev, Uid) when is_pid(Dev), is_integer(Uid), Uid >= 0 ->
    port_call(Dev, {owner, Uid});
owner(Dev, User) when is_pid(Dev), is_list(User); is_pid(Dev), is_binary(User) ->
    case tunctl_opts:uid(User) of
        {ok, Uid} -> owner(Dev, Uid);
        {error, _} = Error -> Error
    end.

%% @doc Set the group owning the interface (`TUNSETGROUP'): a gid, or a
%% group name looked up in `/etc/group'. An unknown name returns
%% `{error, einval}'.
%%
%% ```
%% 1> tuncer:group(Dev, 4322).
%% ok
%% '''
-spec group(dev(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
group(Dev, Gid) when is_pid(Dev), is_integer(Gid), Gid >= 0 ->
    port_call(Dev, {group, Gid});
group(Dev, Group) when is_pid(Dev), is_list(Group); is_pid(Dev), is_binary(Group) ->
    case tunctl_opts:gid(Group) of
        {ok, Gid} -> group(Dev, Gid);
        {error, _} = Error -> Error
    end.

%% @doc Read a packet from the device named by a handle.
%% @equiv read(Handle, 65551)
-spec read(handle()) -> {ok, binary()} | {error, posix()}.
read(Handle) ->
    read(Handle, ?READ_SIZE).

%% @doc Read a packet (at most `Size' bytes) from a descriptor of
%% `getfd/1', without blocking, whatever the device's mode, as
%% msantos/tunctl 1.0 read its descriptor: the next packet relayed to the
%% descriptor, else the next packet waiting in the device;
%% `{error, eagain}' when there is none. On an active device the packet
%% read is not delivered as a message. Not filtered (`filter/2'). Any
%% other integer returns `{error, ebadf}'.
%%
%% ```
%% 1> FD = tuncer:getfd(Dev).
%% 21
%% 2> tuncer:read(FD, 1500).
%% {error,eagain}
%% '''
-spec read(handle(), pos_integer()) -> {ok, binary()} | {error, posix()}.
read(Handle, Size) when is_integer(Handle), is_integer(Size), Size > 0 ->
    case tunctl_fds:read(Handle, Size) of
        {error, eagain} -> tunctl_fds:with_device(Handle, fun(Dev) -> call(Dev, {read, Size}) end);
        Result -> Result
    end.

%% @doc Write a packet to the device of a descriptor of `getfd/1',
%% whatever the device's mode, as `send/2'.
-spec write(handle(), iodata()) -> ok | {error, posix()}.
write(Handle, Data) when is_integer(Handle) ->
    tunctl_fds:with_device(Handle, fun(Dev) -> send(Dev, Data) end).

%% @doc Write a packet to the device.
%%
%% Asynchronous: returns `ok' as soon as the packet is queued to the port.
%% What can be known before the write is returned at once: data that is not
%% iodata raises `badarg'; more than 65551 bytes is `{error, emsgsize}';
%% what the kernel would refuse is `{error, einval}' (shorter than the
%% packet information or virtio-net header the device has, a TAP frame
%% shorter than 14 bytes, a TUN `no_pi' packet whose version nibble is not
%% 4 or 6); a device of this node that is gone makes the caller exit with
%% `noproc', as a `gen_server:call' does. A write that fails in the kernel
%% (for example `eio' while the link is down) arrives later as
%% `{tuntap_error, Dev, Posix}' to the owner.
%%
%% ```
%% 1> tuncer:send(Dev, Packet).
%% ok
%% '''
-spec send(dev(), iodata()) -> ok | {error, emsgsize | einval}.
send(Dev, Data) when is_pid(Dev) ->
    case tunctl_opts:packet_size(Data) of
        N when N > ?MAX_PACKET -> {error, emsgsize};
        Size -> tunctl_device:send(Dev, Size, Data)
    end;
send(_, _) ->
    erlang:error(badarg).

%% @doc Write several packets, in order, as one request: the same as
%% `send/2' on each, but the whole list reaches the port at once (few
%% frames; on a TUN device it created, the port writes each run of UDP
%% datagrams of one flow as one UDP GSO super-packet, which the kernel
%% splits back into the same datagrams). If any packet is larger than 65551
%% bytes none is sent and `{error, emsgsize}' is returned; if the kernel
%% would refuse any (as `send/2''s `{error, einval}'), none is sent and
%% `{error, einval}' is returned; anything but a list of iodata raises
%% `badarg'. A device of this node that is gone exits the caller
%% (`noproc'), as `send/2' does.
%%
%% ```
%% 1> tuncer:sendv(Dev, [P1, P2, P3]).
%% ok
%% '''
-spec sendv(dev(), [iodata()]) -> ok | {error, emsgsize | einval}.
sendv(Dev, Packets) when is_pid(Dev), is_list(Packets) ->
    Sized = [{tunctl_opts:packet_size(P), P} || P <- Packets],
    case too_big(Sized) of
        true -> {error, emsgsize};
        false when Sized =:= [] -> ok;
        false -> tunctl_device:sendv(Dev, Sized)
    end;
sendv(_, _) ->
    erlang:error(badarg).

too_big([{N, _} | Sized]) -> N > ?MAX_PACKET orelse too_big(Sized);
too_big([]) -> false.

%% @doc Read a packet from a passive device.
%% @equiv recv(Dev, 65551)
-spec recv(dev()) -> {ok, binary()} | {error, posix()}.
recv(Dev) ->
    recv(Dev, ?READ_SIZE).

%% @doc Read a packet (at most `Size' bytes) from a passive device without
%% blocking: `{error, eagain}' when none is waiting. An active device
%% returns `{error, einval}'.
-spec recv(dev(), pos_integer()) -> {ok, binary()} | {error, posix()}.
recv(Dev, Size) when is_pid(Dev), is_integer(Size), Size > 0 ->
    call(Dev, {recv, Size}).

%% @doc Read a packet from a passive device, waiting up to `Timeout'
%% milliseconds: `{error, timeout}' when none arrived.
%%
%% ```
%% 1> tuncer:recv(Dev, 1500, 100).
%% {error,timeout}
%% '''
-spec recv(dev(), pos_integer(), timeout()) -> {ok, binary()} | {error, posix() | timeout}.
recv(Dev, Size, infinity) when is_pid(Dev), is_integer(Size), Size > 0 ->
    tunctl_device:call(Dev, {recv, Size, infinity}, infinity);
recv(Dev, Size, Timeout) when
    is_pid(Dev), is_integer(Size), Size > 0, is_integer(Timeout), Timeout >= 0
->
    tunctl_device:call(Dev, {recv, Size, Timeout}, Timeout).

%% @doc Set an option.
%%
%% <ul>
%% <li>`{active, true | false | once | N}': `N' (-32768..32767) is added to
%%     the current counter; when the counter is zero or less the device
%%     turns passive and `{tuntap_passive, Dev}' is sent to the owner.</li>
%% <li>`{deliver, batch}': active delivery sends
%%     `{tuntap_batch, Dev, Packets}' (see the module doc) instead of one
%%     `{tuntap, Dev, Packet}' per packet; `{deliver, packet}' (the default)
%%     goes back.</li>
%% <li>`{offload, Offloads}' (`TUNSETOFFLOAD'): a list of `csum', `tso4',
%%     `tso6', `tso_ecn', `uso4', `uso6' (`[]': none). The kernel then hands
%%     over, and accepts, packets with partial checksums and GSO
%%     super-packets of up to 64 KiB, each behind its `virtio_net_hdr'
%%     (`header/2' decodes it). Needs a `vnet_hdr' device, and `csum' with
%%     any other offload: `{error, einval}' otherwise, or when the kernel
%%     does not know a flag (`uso4'/`uso6' before Linux 6.2).</li>
%% </ul>
%% `N' outside -32768..32767 (as `inet') and any other option return
%% `{error, badarg}', as msantos/tunctl did.
%%
%% ```
%% 1> tuncer:setopt(Dev, {active, 10}).
%% ok
%% 2> tuncer:setopt(Dev, {deliver, batch}).
%% ok
%% '''
-spec setopt(dev(), {active, active()} | {deliver, packet | batch} | {offload, [offload()]} | term()) ->
    ok | {error, badarg | posix()}.
setopt(Dev, {active, A} = Opt) when is_pid(Dev) ->
    case tunctl_opts:is_active(A) of
        true -> call(Dev, Opt);
        false -> {error, badarg}
    end;
setopt(Dev, {deliver, Mode} = Opt) when is_pid(Dev) ->
    case tunctl_opts:is_deliver(Mode) of
        true -> call(Dev, Opt);
        false -> {error, badarg}
    end;
setopt(Dev, {offload, Offloads} = Opt) when is_pid(Dev) ->
    case tunctl_opts:is_offload(Offloads) of
        true -> port_call(Dev, Opt);
        false -> {error, badarg}
    end;
setopt(Dev, _) when is_pid(Dev) ->
    {error, badarg}.

%% @doc Make `Pid' the owner of the device: it is linked to the device and
%% receives its messages from now on; the device messages already in the
%% caller's mailbox are moved to `Pid', in order (as `gen_tcp'). Only the
%% owner may do this: other callers get `{error, not_owner}', as with
%% msantos/tunctl.
-spec controlling_process(dev(), pid()) -> ok | {error, not_owner}.
controlling_process(Dev, Pid) when is_pid(Dev), is_pid(Pid) ->
    case call(Dev, {controlling_process, Pid}) of
        ok ->
            ok;
        {error, not_owner} = Error ->
            Error;
        {hold, Hold} ->
            ok = flush_events(Dev, Pid),
            tunctl_device:release(Dev, Hold)
    end.

%% @doc Set the device's primary address and bring the link up, as
%% msantos/tunctl 1.0 did (`SIOCSIFADDR'): IPv4 `/32'. The kernel replaces
%% the interface's first IPv4 address (or adds one when there is none), so
%% calling it again with the same address is `ok' and changes nothing, and
%% a new address replaces the previous one (re-attaching one's own
%% persistent device and calling `up/2' again is `ok'). The broadcast
%% address is the kernel's: on a TAP device the classful one
%% (`198.18.0.1' gets `198.18.0.255'), none on a TUN device
%% (point-to-point). IPv6 (not in 1.0): the address is added as `/64', and
%% an address already there is `ok'. `addr_add/2,3' add further addresses.
%%
%% `IP' is a tuple, a string or a binary (`"198.18.0.1"',
%% `<<"2001:db8::1">>', or the 4 or 16 bytes of the address). An address
%% that does not parse returns `{error, einval}'; a term that is not an
%% address at all (an atom, a number) raises `badarg'. Kernel errors come
%% back as posix atoms (`enodev' when the interface was deleted, `eacces'
%% when a policy refuses it).
%%
%% ```
%% 1> tuncer:up(Dev, "198.18.0.1").
%% ok
%% '''
-spec up(dev(), ip()) -> ok | {error, posix()}.
up(Dev, IP) when is_pid(Dev) ->
    tunctl_addrs:up(port(Dev), IP).

%% @doc Set the primary address with a prefix length or a netmask and
%% bring the link up, as `up/2' (`SIOCSIFADDR', then the prefix on the
%% address just set, over rtnetlink: 1.0's `SIOCSIFNETMASK' changed the
%% interface's first address instead; on a TAP device the broadcast address
%% follows the prefix, as with `SIOCSIFNETMASK'). A prefix length
%% out of range or a non-contiguous netmask returns `{error, einval}'.
%%
%% ```
%% 1> tuncer:up(Dev, {198,18,0,1}, 24).
%% ok
%% 2> tuncer:up(Dev, "198.18.1.1", "255.255.255.0").
%% ok
%% 3> tuncer:up(Dev, "2001:db8::1", 64).
%% ok
%% '''
-spec up(dev(), ip(), mask()) -> ok | {error, posix()}.
up(Dev, IP, Mask) when is_pid(Dev) ->
    tunctl_addrs:up(port(Dev), IP, Mask).

%% @doc Add an address and bring the link up: IPv4 as `/32' with the
%% broadcast address `x.x.x.255', IPv6 as `/64'. Unlike `up/2' it never
%% replaces an address: `{error, eexist}' when the interface has it.
%%
%% ```
%% 1> tuncer:addr_add(Dev, "198.18.2.1").
%% ok
%% '''
-spec addr_add(dev(), ip()) -> ok | {error, posix()}.
addr_add(Dev, IP) when is_pid(Dev) ->
    tunctl_addrs:add(port(Dev), IP).

%% @doc Add an IPv4 or IPv6 address with a prefix length or a netmask and
%% bring the link up. IPv4 addresses get the broadcast address of their
%% network.
%%
%% ```
%% 1> tuncer:addr_add(Dev, "198.18.3.1", 24).
%% ok
%% '''
-spec addr_add(dev(), ip(), mask()) -> ok | {error, posix()}.
addr_add(Dev, IP, Mask) when is_pid(Dev) ->
    tunctl_addrs:add(port(Dev), IP, Mask).

%% @doc Remove an address, with the prefix the kernel has for it;
%% `{error, eaddrnotavail}' when the interface does not have it.
%%
%% ```
%% 1> tuncer:addr_del(Dev, "198.18.1.1").
%% ok
%% '''
-spec addr_del(dev(), ip()) -> ok | {error, posix()}.
addr_del(Dev, IP) when is_pid(Dev) ->
    tunctl_addrs:del(port(Dev), IP).

%% @doc Remove the address `IP' with this prefix length or netmask (the
%% kernel matches both): `{error, eaddrnotavail}' when the interface has no
%% such address.
%%
%% ```
%% 1> tuncer:addr_del(Dev, "2001:db8::1", 64).
%% ok
%% '''
-spec addr_del(dev(), ip(), mask()) -> ok | {error, posix()}.
addr_del(Dev, IP, Mask) when is_pid(Dev) ->
    tunctl_addrs:del(port(Dev), IP, Mask).

%% @doc Bring the link down. Addresses stay assigned.
-spec down(dev()) -> ok | {error, posix()}.
down(Dev) when is_pid(Dev) ->
    port_call(Dev, {link_set, [{up, false}]}).

%% @doc Set the point-to-point peer. IPv4, as msantos/tunctl 1.0
%% (`SIOCSIFDSTADDR'): the peer of the primary IPv4 address (see `up/2');
%% calling it again changes the peer. IPv6 (not in 1.0): the newest global
%% IPv6 address the kernel has for the interface is replaced by the same
%% address, as `/128', with this peer. `{error, eaddrnotavail}' when there
%% is no such address.
%%
%% ```
%% 1> tuncer:up(Dev, "198.18.0.1"), tuncer:dstaddr(Dev, "198.18.0.2").
%% ok
%% 2> tuncer:up(Dev, "2001:db8::1", 64), tuncer:dstaddr(Dev, "2001:db8::2").
%% ok
%% '''
-spec dstaddr(dev(), ip()) -> ok | {error, posix()}.
dstaddr(Dev, IP) when is_pid(Dev) ->
    tunctl_addrs:dstaddr(port(Dev), IP).

%% @doc Set the broadcast address of the primary IPv4 address, as
%% msantos/tunctl 1.0 (`SIOCSIFBRDADDR'). An IPv6 address returns
%% `{error, einval}'.
%%
%% ```
%% 1> tuncer:broadcast(Dev, "198.18.0.127").
%% ok
%% '''
-spec broadcast(dev(), ip()) -> ok | {error, posix()}.
broadcast(Dev, IP) when is_pid(Dev) ->
    tunctl_addrs:broadcast(port(Dev), IP).

%% @doc The MTU of the interface, as msantos/tunctl 1.0: `{ok, MTU}'.
%%
%% ```
%% 1> tuncer:mtu(Dev).
%% {ok,1500}
%% '''
-spec mtu(dev()) -> {ok, pos_integer()} | {error, posix()}.
mtu(Dev) when is_pid(Dev) ->
    case port_call(Dev, {link_info}) of
        {ok, Info} -> {ok, proplists:get_value(mtu, Info)};
        {error, _} = Error -> Error
    end.

%% @doc Set the MTU of the interface. Returns, as msantos/tunctl 1.0,
%% `{ok, FD, Devname}': `FD' is the descriptor of `getfd/1' (made if
%% needed). Values the kernel refuses (zero, negative, above the device's
%% maximum of 65535) return `{error, einval}'.
%%
%% ```
%% 1> tuncer:mtu(Dev, 1400).
%% {ok,21,<<"tun0">>}
%% '''
-spec mtu(dev(), integer()) -> {ok, handle(), binary()} | {error, posix()}.
mtu(Dev, MTU) when is_pid(Dev), is_integer(MTU) ->
    case port_call(Dev, {link_set, [{mtu, MTU}]}) of
        ok ->
            try getfd(Dev) of
                Fd -> {ok, Fd, devname(Dev)}
            catch
                error:{tunctl_getfd, Reason} -> {error, Reason}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Drop, in the port, packets read from the device that match none of
%% `Rules', before they reach the BEAM (`[]' removes the filter). A rule is
%% an EtherType (`ipv4', `ipv6', `arp', `{ethertype, N}') or an IP protocol
%% (`icmp', `icmpv6', `udp', `tcp', `{ip_proto, N}', matched against the
%% IPv4 protocol or IPv6 next header field, no extension header walk).
%% Dropped packets are counted as `filtered' by `stats/1'. An unknown rule
%% raises `badarg'. The filter applies to the packets the port reads for an
%% active owner and for `recv/3'; `recv/1,2' and `read/1,2' are not
%% filtered.
%%
%% ```
%% 1> tuncer:filter(Dev, [udp, icmpv6]).
%% ok
%% '''
-spec filter(dev(), [rule()]) -> ok | {error, posix()}.
filter(Dev, Rules) when is_pid(Dev), is_list(Rules) ->
    _ = [erlang:error(badarg) || R <- Rules, not tunctl_opts:is_rule(R)],
    port_call(Dev, {filter, Rules}).

%% @doc Counters kept by the port for the device: `rx' is device to BEAM
%% (packets delivered), `tx' BEAM to device (packets written), `filtered'
%% the packets dropped by `filter/2', and the read and write errors.
%%
%% ```
%% 1> tuncer:stats(Dev).
%% {ok,#{filtered => 2,rx_bytes => 84,rx_errors => 0,rx_packets => 1,
%%       tx_bytes => 84,tx_errors => 0,tx_packets => 1}}
%% '''
-spec stats(dev()) -> {ok, stats()} | {error, posix()}.
stats(Dev) when is_pid(Dev) ->
    case port_call(Dev, {stats}) of
        {ok, Counters} -> {ok, maps:from_list(Counters)};
        {error, _} = Error -> Error
    end.

%% @doc Decode the packet information header (`struct tun_pi') in front
%% of a packet read from a device created without `no_pi', as
%% msantos/tunctl 1.0: `{tun_pi, Flags, Proto, Payload}', both fields in
%% host byte order (see `tunctl:header/1'). `header/2' gives a map, with
%% `proto' in network byte order.
%%
%% ```
%% 1> tuncer:header(Packet).
%% {tun_pi,0,56710,<<96,0,...>>}
%% '''
-spec header(binary()) -> {tun_pi, tunctl:uint16_t(), tunctl:uint16_t(), binary()} | {error, einval}.
header(Packet) ->
    tunctl:header(Packet).

%% @doc Decode the headers the kernel puts in front of the packets of a
%% device with these flags: `Flags' is the integer `flags/1' returns, or
%% the option list the device was created with.
%%
%% Returns `{ok, Header, Payload}', `Payload' being the IP packet (TUN) or
%% the Ethernet frame (TAP), a sub-binary. `Header' is a map with
%% <ul>
%% <li>without `no_pi': `flags' (`TUN_PKT_STRIP' = 1 when the packet was
%%     truncated) and `proto' (the EtherType, e.g. `16#86DD');</li>
%% <li>with `vnet_hdr': `vnet', the 10-byte `struct virtio_net_hdr':
%%     `flags' (1 `NEEDS_CSUM', 2 `DATA_VALID'), `gso_type' (0 none,
%%     1 TCPv4, 3 UDP, 4 TCPv6, 5 UDP_L4, + 16#80 ECN), `hdr_len',
%%     `gso_size', `csum_start', `csum_offset'.</li>
%% </ul>
%% With `no_pi' and without `vnet_hdr' it is `#{}'. `proto' is in network
%% byte order, the other fields in host byte order, as the kernel writes
%% them. A packet shorter than its headers returns `{error, einval}'.
%%
%% ```
%% 1> {ok, Dev} = tuncer:create(<<>>, [tun, vnet_hdr, {active, true}]).
%% 2> receive {tuntap, Dev, P} -> tuncer:header(P, tuncer:flags(Dev)) end.
%% {ok,#{flags => 0,proto => 34525,
%%       vnet => #{csum_offset => 0,csum_start => 0,flags => 0,
%%                 gso_size => 0,gso_type => 0,hdr_len => 0}},
%%     <<96,0,0,0,0,16,58,255,...>>}
%% '''
-spec header(binary(), non_neg_integer() | [option()]) -> {ok, header(), binary()} | {error, einval}.
header(Packet, Flags) when is_binary(Packet), is_integer(Flags), Flags >= 0 ->
    tunctl_opts:header(Packet, Flags);
header(Packet, Options) when is_binary(Packet), is_list(Options) ->
    tunctl_opts:header(Packet, Options).

%%--------------------------------------------------------------------
%%% Internal functions
%%--------------------------------------------------------------------

call(Dev, Request) ->
    tunctl_device:call(Dev, Request).

port_call(Dev, Cmd) ->
    call(Dev, {port, Cmd}).

% The device's port commands, for tunctl_addrs.
port(Dev) ->
    fun(Cmd) -> port_call(Dev, Cmd) end.

flush_events(Dev, Pid) ->
    receive
        {Tag, Dev, _} = Event when Tag =:= tuntap; Tag =:= tuntap_batch; Tag =:= tuntap_error ->
            Pid ! Event,
            flush_events(Dev, Pid);
        {tuntap_passive, Dev} = Event ->
            Pid ! Event,
            flush_events(Dev, Pid)
    after 0 ->
        ok
    end.
