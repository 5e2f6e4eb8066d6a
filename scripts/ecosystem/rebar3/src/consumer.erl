%% Uses tunctl the way a dependent application would.
-module(consumer).
-export([reflect/1]).

%% Swap the addresses and ports of an IPv4 UDP packet: neither checksum
%% changes (their sums do not depend on the order).
-spec reflect(binary()) -> binary().
reflect(<<Hdr:12/binary, Src:4/binary, Dst:4/binary, SP:16, DP:16, Rest/binary>>) ->
    <<Hdr/binary, Dst/binary, Src/binary, DP:16, SP:16, Rest/binary>>.
