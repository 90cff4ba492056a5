package livepulse.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * What the Quix contender (bench/quix.py) computes, the way Kafka Streams' documentation
 * writes it: keep like events, sum their {@code count} per record key (the stream id) in 60 s
 * tumbling windows on event time (the event's {@code ts}), in the default RocksDB window
 * store, and emit each window once when it closes (suppress until window closes, no grace)
 * to {@code BENCH_GROUP.out}. One stream thread, commits every BENCH_COMMIT_SECONDS (5),
 * at-least-once.
 *
 * <p>Run by bench/run.py with BENCH_BROKER, BENCH_TOPIC, BENCH_GROUP (the application id)
 * and BENCH_STATE_DIR in the environment; SIGTERM closes it.
 */
public final class TumblingLikes {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The value parsed once; the timestamp extractor sees the parsed value. */
  static final class JsonDeserializer implements Deserializer<JsonNode> {
    @Override
    public JsonNode deserialize(String topic, byte[] data) {
      try {
        return data == null ? null : JSON.readTree(data);
      } catch (IOException e) {
        throw new SerializationException(e);
      }
    }
  }

  static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      JsonNode ts = ((JsonNode) record.value()).get("ts");
      return ts == null ? partitionTime : ts.asLong();
    }
  }

  private static String env(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }

  public static void main(String[] args) throws InterruptedException {
    String group = env("BENCH_GROUP", "bench-kstreams");
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, group);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env("BENCH_BROKER", "127.0.0.1:39092"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, env("BENCH_STATE_DIR", ".local/bench/kstreams-state"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    // as livepulse's default commit interval, and Quix's (bench.run passes it)
    props.put(
        StreamsConfig.COMMIT_INTERVAL_MS_CONFIG,
        Math.round(Double.parseDouble(env("BENCH_COMMIT_SECONDS", "5")) * 1000));
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");

    Serde<JsonNode> json =
        Serdes.serdeFrom(
            (topic, node) -> node == null ? null : node.toString().getBytes(UTF_8),
            new JsonDeserializer());
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            env("BENCH_TOPIC", "bench.events"),
            Consumed.with(Serdes.String(), json).withTimestampExtractor(new EventTime()))
        .filter((key, event) -> "like".equals(event.path("type").asText()))
        .mapValues(event -> event.path("count").asLong())
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(60)))
        .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long()))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream()
        .map((window, likes) -> KeyValue.pair(window.key(), likes))
        .to(group + ".out", Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch closed = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(20));
                  closed.countDown();
                }));
    streams.setUncaughtExceptionHandler(
        e -> {
          e.printStackTrace();
          System.exit(1);
          return null;
        });
    streams.start();
    closed.await();
  }
}
