# Runs inside a private network namespace (scripts/in-netns); 198.18.161.0/24.
defmodule MixConsumerTest do
  use ExUnit.Case

  test "a datagram goes through a TUN device owned from Elixir, both ways" do
    {:ok, dev} = :tuncer.create("mixcons0", [:tun, :no_pi, {:active, true}])
    assert :tuncer.devname(dev) == "mixcons0"
    :ok = :tuncer.up(dev, {198, 18, 161, 1}, 24)
    {:ok, s} = :gen_udp.open(0, [:binary, {:ip, {198, 18, 161, 1}}, {:active, false}])
    :ok = :gen_udp.send(s, {198, 18, 161, 2}, 9, "from elixir")

    # the kernel routes the datagram into the device (IPv4, protocol 17)
    assert_receive {:tuntap, ^dev, <<4::4, _::68, 17, _::binary>> = packet}, 5000
    assert :binary.match(packet, "from elixir") != :nomatch

    # swap addresses and ports (checksums stay valid) and write it back
    <<hdr::binary-size(12), src::binary-size(4), dst::binary-size(4), sp::16, dp::16, rest::binary>> = packet
    :ok = :tuncer.send(dev, <<hdr::binary, dst::binary, src::binary, dp::16, sp::16, rest::binary>>)
    assert {:ok, {{198, 18, 161, 2}, 9, "from elixir"}} = :gen_udp.recv(s, 0, 5000)

    :ok = :gen_udp.close(s)
    :ok = :tuncer.destroy(dev)
  end
end
